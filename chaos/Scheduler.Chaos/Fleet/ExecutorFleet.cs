using System.Globalization;
using Dtask.Testing;

namespace Dtask.Chaos.Fleet;

/// <summary>
/// The executors of the chaos run, spread over the Consul servers: node <c>i</c> talks to server <c>i mod N</c>, as
/// each machine of a real fleet talks to its own agent. An executor whose server is down cannot reach Consul until
/// that server is back; it must recover by itself.
/// </summary>
public sealed class ExecutorFleet : IDisposable
{
    private ExecutorFleet(IReadOnlyList<ExecutorNode> nodes) => Nodes = nodes;

    /// <summary>The executors, <c>node-1</c> first.</summary>
    public IReadOnlyList<ExecutorNode> Nodes { get; }

    /// <summary>Creates <paramref name="count"/> executors spread over <paramref name="cluster"/>'s servers (not started yet).</summary>
    public static ExecutorFleet Create(int count, ConsulCluster cluster, ExecutorLaunch launch, string folder)
    {
        ArgumentNullException.ThrowIfNull(cluster);
        var nodes = Enumerable.Range(0, count).Select(i =>
        {
            var name = "node-" + (i + 1).ToString(CultureInfo.InvariantCulture);
            var server = cluster.Servers[i % cluster.Servers.Count];
            return new ExecutorNode(name, server.Address, launch, Path.Combine(folder, name + ".log"));
        }).ToList();
        return new ExecutorFleet(nodes);
    }

    /// <summary>The executor named <paramref name="name"/>.</summary>
    public ExecutorNode this[string name] => Nodes.Single(n => n.Name == name);

    /// <summary>The executors that talk to <paramref name="server"/>.</summary>
    public IReadOnlyList<ExecutorNode> AttachedTo(ConsulClusterServer server) =>
        [.. Nodes.Where(n => n.Consul == (server ?? throw new ArgumentNullException(nameof(server))).Address)];

    /// <summary>Starts every executor and waits until all watch their tasks.</summary>
    public async Task StartAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        foreach (var node in Nodes)
        {
            node.Start();
        }

        await Task.WhenAll(Nodes.Select(n => n.WaitReadyAsync(timeout, cancellationToken))).ConfigureAwait(false);
    }

    /// <summary>SIGTERM to every executor at once (resuming paused ones), then waits for all.</summary>
    public Task StopAsync(TimeSpan within) => Task.WhenAll(Nodes.Select(n => n.StopAsync(within)));

    /// <summary>Kills whatever still runs.</summary>
    public void Dispose()
    {
        foreach (var node in Nodes)
        {
            node.Dispose();
        }
    }
}
