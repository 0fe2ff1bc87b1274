using Dtask.Consul;
using Dtask.Core.State;
using Dtask.Testing;

[assembly: AssemblyFixture(typeof(Dtask.Operator.Tests.Support.ConsulFixture))]

namespace Dtask.Operator.Tests.Support;

/// <summary>One real Consul dev agent for the whole assembly; each test works under its own random prefix.</summary>
public sealed class ConsulFixture : IAsyncLifetime
{
    private ConsulAgent? agent;
    private ConsulClient? client;

    public ConsulAgent Agent => agent ?? throw new InvalidOperationException("agent not started");

    /// <summary>A shared client (do not use it to count writes: other tests share it).</summary>
    public ConsulClient Client => client ?? throw new InvalidOperationException("agent not started");

    /// <summary>A client of its own, whose request counters only this test moves.</summary>
    public ConsulClient NewClient() => Agent.CreateClient();

    /// <summary>A fresh layout under a random prefix.</summary>
    public static KvLayout NewLayout() => new(TestKvPrefix.New());

    public async ValueTask InitializeAsync()
    {
        agent = await ConsulAgent.StartAsync(cancellationToken: TestContext.Current.CancellationToken);
        client = agent.CreateClient();
    }

    public async ValueTask DisposeAsync()
    {
        client?.Dispose();
        if (agent is not null)
        {
            await agent.DisposeAsync();
        }
    }
}
