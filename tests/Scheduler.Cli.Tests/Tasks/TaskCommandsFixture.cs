using Dtask.Consul;
using Dtask.Core.State;
using Dtask.Testing;

[assembly: AssemblyFixture(typeof(Dtask.Cli.Tests.Tasks.TaskCommandsFixture))]

namespace Dtask.Cli.Tests.Tasks;

/// <summary>A real Consul dev agent for the Consul-backed commands; each test uses its own random prefix.</summary>
public sealed class TaskCommandsFixture : IAsyncLifetime
{
    private ConsulAgent? agent;
    private ConsulClient? client;

    public ConsulAgent Agent => agent ?? throw new InvalidOperationException("agent not started");

    public ConsulClient Client => client ?? throw new InvalidOperationException("agent not started");

    /// <summary>The agent's address as <c>--consul</c> takes it.</summary>
    public string Address => $"{Agent.Address.Host}:{Agent.Address.Port}";

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

/// <summary>Runs dtask against the fixture's agent under one test's prefix.</summary>
internal sealed class TaskCli(TaskCommandsFixture consul)
{
    public KvLayout Layout { get; } = new(TestKvPrefix.New());

    public CliRun Run(params string[] args) => CliRun.Of([.. args, "--consul", consul.Address, "--prefix", Layout.Prefix]);
}
