using System.Globalization;

namespace Dtask.Chaos.Hosts;

/// <summary>
/// A partition between Consul servers: an <c>nft</c> table in the machine's own network namespace that drops every packet
/// between the minority's loopback addresses and the majority's, both ways (each server of the cluster binds, and sends
/// its server and gossip traffic, from an address of its own). The executors' gateways reach every server from
/// <c>127.0.0.1</c>, so each executor still talks to its own agent: those on the minority side find it without a leader.
/// </summary>
public sealed class ServerPartition(ChaosTools tools) : IDisposable
{
    private readonly Lock gate = new();
    private bool cut;

    /// <summary>The table of this process (removed at heal, and by <see cref="RemoveStale"/> once the process is gone).</summary>
    public static string Table => "dtask_chaos_p" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture);

    /// <summary>The <c>nft</c> script that cuts <paramref name="minority"/> off from <paramref name="majority"/> (addresses).</summary>
    public static string Rules(string table, IReadOnlyCollection<string> minority, IReadOnlyCollection<string> majority)
    {
        ArgumentNullException.ThrowIfNull(minority);
        ArgumentNullException.ThrowIfNull(majority);
        if (minority.Count == 0 || majority.Count == 0 || minority.Intersect(majority, StringComparer.Ordinal).Any())
        {
            throw new ArgumentException("a partition needs two disjoint, non-empty sides");
        }

        var a = "{ " + string.Join(", ", minority) + " }";
        var b = "{ " + string.Join(", ", majority) + " }";
        return $$"""
            table ip {{table}} {
              chain out {
                type filter hook output priority 0; policy accept;
                ip saddr {{a}} ip daddr {{b}} drop
                ip saddr {{b}} ip daddr {{a}} drop
              }
            }

            """;
    }

    /// <summary>Cuts <paramref name="minority"/> off from <paramref name="majority"/>.</summary>
    public void Cut(IReadOnlyCollection<string> minority, IReadOnlyCollection<string> majority)
    {
        lock (gate)
        {
            if (cut)
            {
                throw new InvalidOperationException("a partition is already in force");
            }

            tools.NftHere(Rules(Table, minority, majority));
            cut = true;
        }
    }

    /// <summary>Removes the drop rules.</summary>
    public void Heal()
    {
        lock (gate)
        {
            if (!cut)
            {
                return;
            }

            tools.NftHere($"delete table ip {Table}\n");
            cut = false;
        }
    }

    /// <summary>Removes the tables of earlier chaos runs whose process is gone.</summary>
    public static void RemoveStale(ChaosTools tools)
    {
        ArgumentNullException.ThrowIfNull(tools);
        foreach (var line in tools.NftHereOutput("list tables").Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var match = System.Text.RegularExpressions.Regex.Match(line.Trim(), "^table ip (dtask_chaos_p([0-9]+))$");
            if (match.Success && int.TryParse(match.Groups[2].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var pid)
                && !Directory.Exists($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}"))
            {
                tools.NftHere($"delete table ip {match.Groups[1].Value}\n");
            }
        }
    }

    /// <summary>Heals the partition if it is still in force.</summary>
    public void Dispose()
    {
        try
        {
            Heal();
        }
        catch (InvalidOperationException)
        {
            // Gone already.
        }
    }
}
