using Dtask.Consul.Locking;
using Dtask.Executor.Claims;
using Dtask.Executor.Tests.Support;

namespace Dtask.Executor.Tests.Claims;

public sealed class ExecutorSessionTests(ConsulFixture consul)
{
    [Fact]
    public async Task The_executor_session_has_a_one_second_lock_delay_and_the_ttl_asked_for()
    {
        using var client = consul.NewClient();
        await using var session = await SessionRenewal.CreateAsync(client, new ExecutorSessionOptions { Ttl = TimeSpan.FromSeconds(30) }, cancellationToken: TestContext.Current.CancellationToken);
        var info = (await client.Sessions.InfoAsync(session.Id, cancellationToken: TestContext.Current.CancellationToken)).Value!;

        Assert.Equal(TimeSpan.FromSeconds(1), info.LockDelay);
        Assert.Equal(TimeSpan.FromSeconds(30), info.Ttl);
        Assert.Equal("dtask executor", info.Name);
        Assert.False(session.IsLost);
    }
}
