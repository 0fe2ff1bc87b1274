using System.Globalization;
using System.Net;

namespace Dtask.Chaos.Hosts;

/// <summary>
/// One executor's own network: a Linux network namespace joined to the host by a veth pair, the host end
/// <see cref="HostAddress"/> and the namespace end <see cref="NodeAddress"/> in a /30 of the run's own 10.213.x.0/24.
/// The executor inside reaches Consul only through the host end (its <see cref="NodeGateway"/> listens there), so a
/// partition is the namespace end's link set down, or an <c>nft</c> drop rule on it inside the namespace. Everything is
/// removed on <see cref="Dispose"/>.
/// </summary>
public sealed class NodeNetwork : IDisposable
{
    private const string Table = "dtask_chaos";
    private readonly ChaosTools tools;
    private readonly Lock gate = new();
    private bool dropping;
    private bool down;
    private bool disposed;

    private NodeNetwork(ChaosTools tools, string netns, string hostVeth, string nodeVeth, IPAddress host, IPAddress node)
    {
        this.tools = tools;
        Namespace = netns;
        HostVeth = hostVeth;
        NodeVeth = nodeVeth;
        HostAddress = host;
        NodeAddress = node;
    }

    /// <summary>The network namespace's name (<c>ip netns</c>).</summary>
    public string Namespace { get; }

    /// <summary>The host end of the veth pair.</summary>
    public string HostVeth { get; }

    /// <summary>The namespace end of the veth pair.</summary>
    public string NodeVeth { get; }

    /// <summary>The host end's address: where the executor's gateway listens.</summary>
    public IPAddress HostAddress { get; }

    /// <summary>The executor's own address inside its namespace.</summary>
    public IPAddress NodeAddress { get; }

    /// <summary>The inode of the namespace (what <c>readlink /proc/PID/ns/net</c> shows for a process inside it): it names the host's witness log.</summary>
    public long NetInode { get; private set; }

    /// <summary>The inode of the network namespace this process runs in.</summary>
    public static long OwnNetInode()
    {
        var link = File.ResolveLinkTarget("/proc/self/ns/net", returnFinalTarget: false)?.ToString() ?? "";
        return long.Parse(new string([.. link.Where(char.IsAsciiDigit)]), NumberStyles.None, CultureInfo.InvariantCulture);
    }

    /// <summary>A free /24 of 10.213.0.0/16 for a run (none of this machine's interfaces has an address in it).</summary>
    public static int FreeSubnet(ChaosTools tools)
    {
        ArgumentNullException.ThrowIfNull(tools);
        var used = ChaosTools.Run(tools.Ip, ["-4", "-o", "addr", "show"]);
        var start = Random.Shared.Next(250);
        for (var i = 0; i < 250; i++)
        {
            var candidate = (start + i) % 250;
            if (!used.Contains($" 10.213.{candidate.ToString(CultureInfo.InvariantCulture)}.", StringComparison.Ordinal))
            {
                return candidate;
            }
        }

        throw new InvalidOperationException("no free /24 left in 10.213.0.0/16 for the chaos run's veth pairs");
    }

    /// <summary>Removes namespaces of earlier chaos runs whose process is gone (names <c>dtc&lt;pid&gt;n&lt;i&gt;</c> for executors, <c>dtc&lt;pid&gt;s&lt;k&gt;n&lt;i&gt;</c> for servers).</summary>
    public static void RemoveStale(ChaosTools tools)
    {
        ArgumentNullException.ThrowIfNull(tools);
        foreach (var line in ChaosTools.Run(tools.Ip, ["netns", "list"]).Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var name = line.Split(' ')[0];
            var match = System.Text.RegularExpressions.Regex.Match(name, "^dtc([0-9]+)(s[0-9]+)?n[0-9]+$");
            if (!match.Success || !int.TryParse(match.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            {
                continue;
            }

            if (!Directory.Exists($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}"))
            {
                TryRun(tools, ["netns", "delete", name]);
            }
        }
    }

    /// <summary>Creates node <paramref name="index"/>'s namespace and veth pair in subnet 10.213.<paramref name="subnet"/>.0/24.</summary>
    public static NodeNetwork Create(ChaosTools tools, int subnet, int index)
    {
        ArgumentNullException.ThrowIfNull(tools);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(index, 60);
        var pid = Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
        var i = index.ToString(CultureInfo.InvariantCulture);
        var netns = $"dtc{pid}n{i}";
        var hostVeth = $"dtc{pid}h{i}";
        var nodeVeth = $"dtc{pid}v{i}";
        var host = IPAddress.Parse($"10.213.{subnet.ToString(CultureInfo.InvariantCulture)}.{(index * 4) + 1}");
        var node = IPAddress.Parse($"10.213.{subnet.ToString(CultureInfo.InvariantCulture)}.{(index * 4) + 2}");
        var network = new NodeNetwork(tools, netns, hostVeth, nodeVeth, host, node);
        try
        {
            ChaosTools.Run(tools.Ip, ["netns", "add", netns]);
            ChaosTools.Run(tools.Ip, ["link", "add", hostVeth, "type", "veth", "peer", "name", nodeVeth, "netns", netns]);
            ChaosTools.Run(tools.Ip, ["addr", "add", host + "/30", "dev", hostVeth]);
            ChaosTools.Run(tools.Ip, ["link", "set", hostVeth, "up"]);
            ChaosTools.Run(tools.Ip, ["-n", netns, "addr", "add", node + "/30", "dev", nodeVeth]);
            ChaosTools.Run(tools.Ip, ["-n", netns, "link", "set", nodeVeth, "up"]);
            ChaosTools.Run(tools.Ip, ["-n", netns, "link", "set", "lo", "up"]);
            network.NetInode = long.Parse(ChaosTools.Run("stat", ["-L", "-c", "%i", "/run/netns/" + netns]).Trim(), NumberStyles.None, CultureInfo.InvariantCulture);
            return network;
        }
        catch
        {
            network.Dispose();
            throw;
        }
    }

    /// <summary>The command prefix that runs a program inside the namespace.</summary>
    public IReadOnlyList<string> ExecPrefix => [tools.Ip, "netns", "exec", Namespace];

    /// <summary>Sets the namespace end of the link down (<paramref name="up"/> false) or up again.</summary>
    public void SetLink(bool up)
    {
        lock (gate)
        {
            if (disposed || down == !up)
            {
                return;
            }

            ChaosTools.Run(tools.Ip, ["-n", Namespace, "link", "set", NodeVeth, up ? "up" : "down"]);
            down = !up;
        }
    }

    /// <summary>Adds (<paramref name="drop"/> true) or removes an <c>nft</c> rule inside the namespace that drops every packet on the link, both ways.</summary>
    public void SetDrop(bool drop)
    {
        lock (gate)
        {
            if (disposed || dropping == drop)
            {
                return;
            }

            tools.NftIn(Namespace, drop
                ? $$"""
                    table inet {{Table}} {
                      chain in { type filter hook input priority 0; policy accept; iifname "{{NodeVeth}}" drop; }
                      chain out { type filter hook output priority 0; policy accept; oifname "{{NodeVeth}}" drop; }
                    }
                    """
                : $"delete table inet {Table}\n");
            dropping = drop;
        }
    }

    /// <summary>Deletes the namespace (and with it both ends of the veth pair).</summary>
    public void Dispose()
    {
        lock (gate)
        {
            if (disposed)
            {
                return;
            }

            disposed = true;
        }

        TryRun(tools, ["link", "delete", HostVeth]);
        TryRun(tools, ["netns", "delete", Namespace]);
    }

    /// <summary>Runs <c>ip</c> with <paramref name="arguments"/>, for removing what may already be gone: a failure is ignored.</summary>
    internal static void TryRun(ChaosTools tools, string[] arguments)
    {
        try
        {
            ChaosTools.Run(tools.Ip, arguments);
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
    }

    /// <inheritdoc />
    public override string ToString() => $"{Namespace} ({NodeAddress} via {HostAddress})";
}
