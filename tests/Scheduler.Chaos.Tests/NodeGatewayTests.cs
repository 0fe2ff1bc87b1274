using System.Net;
using System.Text;
using Dtask.Chaos.Hosts;
using Dtask.Consul;
using Dtask.Consul.Http;
using Dtask.Consul.Sessions;
using Dtask.Consul.Txn;
using Dtask.Testing;

namespace Dtask.Chaos.Tests;

/// <summary>The gateway's faults against a real Consul agent: a claim that commits while its answer is lost, and an agent clock moved with its executor's.</summary>
public sealed class NodeGatewayTests
{
    [Fact(Timeout = 120_000)]
    public async Task A_lost_claim_answer_resets_the_connection_after_Consul_committed_the_lock()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var agent = await ConsulAgent.StartAsync(cancellationToken: ct);
        await using var gateway = new NodeGateway(IPAddress.Loopback, agent.Address);
        using var direct = agent.CreateClient();
        using var through = new ConsulClient(agent.ClientOptions() with { Address = gateway.Address });
        var session = (await direct.Sessions.CreateAsync(new SessionRequest("gateway-test", TimeSpan.FromSeconds(30)), ct)).Value;

        // A finish-like write passes while the gateway waits for a claim.
        var losing = gateway.LoseNextAsync(LostAnswer.Claim, TimeSpan.FromSeconds(30), () => true, ct);
        await through.Txn.ExecuteAsync([TxnOp.Set("dtask/state/chaos/t/history/1", Encoding.UTF8.GetBytes("done"))], cancellationToken: ct);
        Assert.False(losing.IsCompleted);

        await Assert.ThrowsAnyAsync<Exception>(() => through.Txn.ExecuteAsync([TxnOp.Lock("dtask/state/chaos/t/lock", Encoding.UTF8.GetBytes("mine"), session)], cancellationToken: ct));

        var lost = await losing;
        Assert.StartsWith("claim transaction on dtask/state/chaos/t/lock", lost, StringComparison.Ordinal);
        var pair = (await direct.Kv.GetAsync("dtask/state/chaos/t/lock", QueryOptions.ConsistentRead, ct)).Value;
        Assert.Equal(session, pair?.Session);
        Assert.Equal("mine", pair?.ValueAsString());

        // Disarmed: the next claim's answer comes back.
        await through.Txn.ExecuteAsync([TxnOp.Lock("dtask/state/chaos/t/lock", Encoding.UTF8.GetBytes("again"), session)], cancellationToken: ct);
    }

    [Fact(Timeout = 120_000)]
    public async Task The_agent_clock_moves_with_its_executors()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var agent = await ConsulAgent.StartAsync(cancellationToken: ct);
        await using var gateway = new NodeGateway(IPAddress.Loopback, agent.Address) { ClockOffset = TimeSpan.FromHours(1) };
        using var http = new HttpClient();
        using var answer = await http.GetAsync(new Uri(gateway.Address, "/v1/status/leader"), ct);
        var date = answer.Headers.Date ?? throw new InvalidOperationException("no Date header");
        Assert.InRange((date - DateTimeOffset.UtcNow).TotalMinutes, 59, 61);
    }
}
