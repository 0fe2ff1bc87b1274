using System.Globalization;
using System.Net;
using Dtask.Testing;

namespace Dtask.Chaos.Hosts;

/// <summary>
/// The Consul servers' own networks: each server in a Linux network namespace of its own, joined by a veth pair to a
/// bridge on the host, all in one /26 of the run's own 10.213.x.0/24 (the bridge <c>.193</c>, server <c>i</c>
/// <c>.194 + i</c>). Servers reach each other across the bridge, and the host (the executors' gateways, the run
/// itself) reaches every server from the bridge's address, so a drop rule inside a server's namespace cuts it off from
/// the servers it names and from nothing else. Everything is removed on <see cref="Dispose"/>.
/// </summary>
public sealed class ServerNetwork : IDisposable
{
    private static int created;
    private readonly ChaosTools tools;
    private readonly List<string> namespaces = [];
    private readonly List<IPAddress> addresses = [];
    private bool disposed;

    private ServerNetwork(ChaosTools tools, string bridge, IPAddress bridgeAddress)
    {
        this.tools = tools;
        Bridge = bridge;
        BridgeAddress = bridgeAddress;
    }

    /// <summary>The bridge on the host every server's veth pair is joined to.</summary>
    public string Bridge { get; }

    /// <summary>The bridge's address: where the host's traffic to the servers comes from.</summary>
    public IPAddress BridgeAddress { get; }

    /// <summary>Server <c>i</c>'s network namespace (<c>ip netns</c>).</summary>
    public IReadOnlyList<string> Namespaces => namespaces;

    /// <summary>Server <c>i</c>'s address inside its namespace.</summary>
    public IReadOnlyList<IPAddress> Addresses => addresses;

    /// <summary>Where server <paramref name="index"/> runs: its address, started with <c>ip netns exec</c> in its namespace.</summary>
    public ConsulServerPlacement Placement(int index) =>
        new(addresses[index].ToString(), [tools.Ip, "netns", "exec", namespaces[index]]);

    /// <summary>The namespace of the server at <paramref name="address"/>.</summary>
    public string NamespaceOf(string address)
    {
        var index = addresses.FindIndex(a => a.ToString() == address);
        return index >= 0 ? namespaces[index] : throw new ArgumentException($"no server of this network has address {address}", nameof(address));
    }

    /// <summary>Creates the bridge and <paramref name="count"/> namespaces in a free /24 of 10.213.0.0/16.</summary>
    public static ServerNetwork Create(ChaosTools tools, int count)
    {
        ArgumentNullException.ThrowIfNull(tools);
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        var subnet = NodeNetwork.FreeSubnet(tools).ToString(CultureInfo.InvariantCulture);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, 9);
        // Names of this process's own (several runs may share a process) and short enough for an interface (15 bytes).
        var pid = Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + "s" + (Interlocked.Increment(ref created) % 100).ToString(CultureInfo.InvariantCulture);
        var network = new ServerNetwork(tools, $"dtc{pid}b", IPAddress.Parse($"10.213.{subnet}.193"));
        try
        {
            ChaosTools.Run(tools.Ip, ["link", "add", network.Bridge, "type", "bridge"]);
            ChaosTools.Run(tools.Ip, ["addr", "add", network.BridgeAddress + "/26", "dev", network.Bridge]);
            ChaosTools.Run(tools.Ip, ["link", "set", network.Bridge, "up"]);
            for (var i = 0; i < count; i++)
            {
                var n = i.ToString(CultureInfo.InvariantCulture);
                var netns = $"dtc{pid}n{n}";
                var hostVeth = $"dtc{pid}h{n}";
                var serverVeth = $"dtc{pid}v{n}";
                var address = IPAddress.Parse($"10.213.{subnet}.{(194 + i).ToString(CultureInfo.InvariantCulture)}");
                ChaosTools.Run(tools.Ip, ["netns", "add", netns]);
                network.namespaces.Add(netns);
                network.addresses.Add(address);
                ChaosTools.Run(tools.Ip, ["link", "add", hostVeth, "type", "veth", "peer", "name", serverVeth, "netns", netns]);
                ChaosTools.Run(tools.Ip, ["link", "set", hostVeth, "master", network.Bridge]);
                ChaosTools.Run(tools.Ip, ["link", "set", hostVeth, "up"]);
                ChaosTools.Run(tools.Ip, ["-n", netns, "addr", "add", address + "/26", "dev", serverVeth]);
                ChaosTools.Run(tools.Ip, ["-n", netns, "link", "set", serverVeth, "up"]);
                ChaosTools.Run(tools.Ip, ["-n", netns, "link", "set", "lo", "up"]);
            }

            return network;
        }
        catch
        {
            network.Dispose();
            throw;
        }
    }

    /// <summary>Removes bridges of earlier chaos runs whose process is gone (names <c>dtc&lt;pid&gt;s&lt;k&gt;b</c>); their namespaces go with <see cref="NodeNetwork.RemoveStale"/>.</summary>
    public static void RemoveStale(ChaosTools tools)
    {
        ArgumentNullException.ThrowIfNull(tools);
        foreach (var line in ChaosTools.Run(tools.Ip, ["-o", "link", "show", "type", "bridge"]).Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var match = System.Text.RegularExpressions.Regex.Match(line, "^[0-9]+: (dtc([0-9]+)s[0-9]+b)[:@]");
            if (match.Success && int.TryParse(match.Groups[2].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var pid)
                && !Directory.Exists($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}"))
            {
                NodeNetwork.TryRun(tools, ["link", "delete", match.Groups[1].Value]);
            }
        }
    }

    /// <summary>Deletes the namespaces (and with them the veth pairs) and the bridge.</summary>
    public void Dispose()
    {
        if (disposed)
        {
            return;
        }

        disposed = true;
        foreach (var netns in namespaces)
        {
            NodeNetwork.TryRun(tools, ["netns", "delete", netns]);
        }

        NodeNetwork.TryRun(tools, ["link", "delete", Bridge]);
    }

    /// <inheritdoc />
    public override string ToString() => $"{Bridge} ({BridgeAddress}): {string.Join(", ", namespaces.Zip(addresses, (n, a) => $"{n} {a}"))}";
}
