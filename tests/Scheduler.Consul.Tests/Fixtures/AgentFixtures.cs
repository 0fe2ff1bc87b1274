using Dtask.Consul;
using Dtask.Testing;

[assembly: AssemblyFixture(typeof(Dtask.Consul.Tests.Fixtures.DevAgentFixture))]

namespace Dtask.Consul.Tests.Fixtures;

/// <summary>Starts one kind of agent for the tests that share it, and stops it afterwards.</summary>
public abstract class AgentFixture(ConsulAgentOptions options) : IAsyncLifetime
{
    private ConsulAgent? agent;
    private ConsulClient? client;

    public ConsulAgent Agent => agent ?? throw new InvalidOperationException("agent not started");

    /// <summary>A shared client of the agent (no token).</summary>
    public ConsulClient Client => client ?? throw new InvalidOperationException("agent not started");

    public async ValueTask InitializeAsync()
    {
        agent = await ConsulAgent.StartAsync(options, TestContext.Current.CancellationToken);
        client = agent.CreateClient(agent.MasterToken);
    }

    public async ValueTask DisposeAsync()
    {
        client?.Dispose();
        if (agent is not null)
        {
            await agent.DisposeAsync();
        }
        GC.SuppressFinalize(this);
    }
}

/// <summary>The plain dev agent the whole assembly shares.</summary>
public sealed class DevAgentFixture() : AgentFixture(ConsulAgentOptions.Dev);

/// <summary>An agent with ACLs on (default deny) and a known master token.</summary>
public sealed class AclAgentFixture() : AgentFixture(new ConsulAgentOptions { AclMasterToken = MasterSecret })
{
    public const string MasterSecret = "b1d4c9e0-5a7f-4f3e-9d2c-0a11ce5ec2e7";
}

/// <summary>An HTTPS-only agent.</summary>
public sealed class TlsAgentFixture() : AgentFixture(new ConsulAgentOptions { Transport = AgentTransport.Https });

/// <summary>An HTTPS-only agent that demands client certificates.</summary>
public sealed class MutualTlsAgentFixture() : AgentFixture(new ConsulAgentOptions { Transport = AgentTransport.MutualTls });
