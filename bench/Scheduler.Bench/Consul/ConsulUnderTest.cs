using Dtask.Consul;
using Dtask.Core.State;

namespace Dtask.Bench.Consul;

/// <summary>A fresh agent for one scenario (or one point of it), with a client and the metrics reader.</summary>
internal sealed class ConsulUnderTest : IAsyncDisposable
{
    private ConsulUnderTest(MeasuredAgent agent)
    {
        Agent = agent;
        Client = new ConsulClient(agent.ClientOptions with { RequestTimeout = TimeSpan.FromSeconds(60) });
        Metrics = new AgentMetrics(agent.Address);
    }

    /// <summary>The agent.</summary>
    public MeasuredAgent Agent { get; }

    /// <summary>A client (used for loading tasks and reading results; its requests are excluded from measured windows where it matters).</summary>
    public ConsulClient Client { get; }

    /// <summary>The agent's counters.</summary>
    public AgentMetrics Metrics { get; }

    /// <summary>The KV prefix of the benchmark.</summary>
    public static string Prefix => "bench/";

    /// <summary>The layout under <see cref="Prefix"/>.</summary>
    public static KvLayout Layout { get; } = new(Prefix);

    /// <summary>Starts one.</summary>
    public static async Task<ConsulUnderTest> StartAsync(CancellationToken cancellationToken, bool tally = false) =>
        new(await MeasuredAgent.StartAsync(cancellationToken, tally));

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        Metrics.Dispose();
        await Agent.DisposeAsync();
    }
}
