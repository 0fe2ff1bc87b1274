using System.Globalization;
using Dtask.Chaos.Hosts;
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

    /// <summary>
    /// Creates <paramref name="count"/> executors spread over <paramref name="cluster"/>'s servers (not started yet). With
    /// <paramref name="tools"/>, each gets its own network namespace and a gateway (its agent) on the host end of its veth
    /// pair; a node named in <paramref name="clocks"/> runs under libfaketime at that initial offset.
    /// </summary>
    public static ExecutorFleet Create(int count, ConsulCluster cluster, ExecutorLaunch launch, string folder, ChaosTools? tools = null,
        IReadOnlyDictionary<string, TimeSpan>? clocks = null)
    {
        ArgumentNullException.ThrowIfNull(cluster);
        var subnet = tools is null ? 0 : NodeNetwork.FreeSubnet(tools);
        var nodes = new List<ExecutorNode>();
        try
        {
            for (var i = 0; i < count; i++)
            {
                var name = "node-" + (i + 1).ToString(CultureInfo.InvariantCulture);
                var server = cluster.Servers[i % cluster.Servers.Count];
                NodeHost? host = null;
                if (tools is not null)
                {
                    var network = NodeNetwork.Create(tools, subnet, i + 1);
                    var gateway = new NodeGateway(network.HostAddress, server.Address);
                    var clock = clocks?.TryGetValue(name, out var offset) == true
                        ? new NodeClock(Path.Combine(folder, name + ".faketime"), tools.Libfaketime, gateway, offset)
                        : null;
                    host = new NodeHost(network, gateway, clock);
                }

                nodes.Add(new ExecutorNode(name, server.Address, launch, Path.Combine(folder, name + ".log"), host));
            }
        }
        catch
        {
            foreach (var node in nodes)
            {
                node.Dispose();
            }

            throw;
        }

        return new ExecutorFleet(nodes);
    }

    /// <summary>Which executor's host each witness log belongs to: network namespace inode to node name (<c>host</c> for the machine's own).</summary>
    public IReadOnlyDictionary<long, string> WitnessHosts()
    {
        var hosts = new Dictionary<long, string> { [NodeNetwork.OwnNetInode()] = "host" };
        foreach (var node in Nodes.Where(n => n.Host is not null))
        {
            hosts[node.Host!.Network.NetInode] = node.Name;
        }

        return hosts;
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
