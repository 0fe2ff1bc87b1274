using Dtask.Consul;
using Dtask.Testing;

[assembly: AssemblyFixture(typeof(Dtask.Executor.Tests.Support.ConsulFixture))]

namespace Dtask.Executor.Tests.Support;

/// <summary>One real Consul dev agent for the whole assembly; each test works under its own KV prefix.</summary>
public sealed class ConsulFixture : IAsyncLifetime
{
    private ConsulAgent? agent;

    public ConsulAgent Agent => agent ?? throw new InvalidOperationException("agent not started");

    /// <summary>A new client of the agent (its own request counters).</summary>
    public ConsulClient NewClient() => Agent.CreateClient();

    public async ValueTask InitializeAsync() => agent = await ConsulAgent.StartAsync(cancellationToken: TestContext.Current.CancellationToken);

    public async ValueTask DisposeAsync()
    {
        if (agent is not null)
        {
            await agent.DisposeAsync();
        }
    }
}
