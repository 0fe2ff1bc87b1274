namespace Dtask.Chaos.Hosts;

/// <summary>
/// A partition between Consul servers: an <c>nft</c> table inside the minority server's own network namespace (see
/// <see cref="ServerNetwork"/>) that drops every packet between its address and the majority's, both ways. The
/// executors' gateways reach every server from the host's bridge address, which no rule names, so each executor still
/// talks to its own agent: those on the minority side find it without a leader. The table goes at heal (and with the
/// namespace at the end of the run).
/// </summary>
public sealed class ServerPartition(ChaosTools tools, ServerNetwork network) : IDisposable
{
    private const string Table = "dtask_chaos_partition";
    private readonly Lock gate = new();
    private string? cutIn;

    /// <summary>The <c>nft</c> script, loaded in the minority's namespace, that cuts <paramref name="minority"/> off from <paramref name="majority"/> (addresses).</summary>
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
              }
              chain in {
                type filter hook input priority 0; policy accept;
                ip saddr {{b}} ip daddr {{a}} drop
              }
            }

            """;
    }

    /// <summary>Cuts the server at <paramref name="minority"/> off from the servers at <paramref name="majority"/>.</summary>
    public void Cut(string minority, IReadOnlyCollection<string> majority)
    {
        lock (gate)
        {
            if (cutIn is not null)
            {
                throw new InvalidOperationException("a partition is already in force");
            }

            var netns = network.NamespaceOf(minority);
            tools.NftIn(netns, Rules(Table, [minority], majority));
            cutIn = netns;
        }
    }

    /// <summary>Removes the drop rules.</summary>
    public void Heal()
    {
        lock (gate)
        {
            if (cutIn is null)
            {
                return;
            }

            tools.NftIn(cutIn, $"delete table ip {Table}\n");
            cutIn = null;
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
            // Gone already (the namespace with it).
        }
    }
}
