using System.Globalization;

namespace Dtask.Bench.Consul;

/// <summary>
/// Cumulative counters of one Consul agent, read from <c>/v1/agent/metrics?format=prometheus</c>. Raft applies are the
/// truest count of writes (every KV set, CAS, lock, transaction, session create or destroy is one, failed CAS included);
/// HTTP requests are every API call the agent answered (the scrape itself excluded).
/// </summary>
/// <param name="RaftApplies"><c>consul.raft.apply</c>: log entries committed.</param>
/// <param name="HttpRequests">Sum of every <c>consul.http.*</c> request count.</param>
/// <param name="KvApplies"><c>consul.kvs.apply</c>: KV writes (PUT, DELETE, CAS, acquire, release).</param>
/// <param name="TxnApplies"><c>consul.txn.apply</c>: transactions.</param>
/// <param name="SessionApplies"><c>consul.session.apply</c>: session creates and destroys.</param>
/// <param name="SessionRenewals">HTTP <c>PUT /v1/session/renew</c> requests (not Raft writes: renewals live in the leader's memory).</param>
/// <param name="ConsistentReads"><c>consul.raft.verify_leader</c>: reads made with <c>?consistent</c>.</param>
/// <param name="ByEndpoint">HTTP request counts by endpoint metric name.</param>
internal sealed record ConsulCounters(
    double RaftApplies,
    double HttpRequests,
    double KvApplies,
    double TxnApplies,
    double SessionApplies,
    double SessionRenewals,
    double ConsistentReads,
    IReadOnlyDictionary<string, double> ByEndpoint)
{
    /// <summary>What happened between <paramref name="earlier"/> and this reading.</summary>
    public ConsulCounters Since(ConsulCounters earlier)
    {
        ArgumentNullException.ThrowIfNull(earlier);
        var endpoints = ByEndpoint.ToDictionary(p => p.Key, p => p.Value - earlier.ByEndpoint.GetValueOrDefault(p.Key), StringComparer.Ordinal);
        return new(RaftApplies - earlier.RaftApplies, HttpRequests - earlier.HttpRequests, KvApplies - earlier.KvApplies,
            TxnApplies - earlier.TxnApplies, SessionApplies - earlier.SessionApplies, SessionRenewals - earlier.SessionRenewals,
            ConsistentReads - earlier.ConsistentReads, endpoints);
    }
}

/// <summary>Reads <see cref="ConsulCounters"/> from an agent.</summary>
internal sealed class AgentMetrics(Uri agent) : IDisposable
{
    private const string HttpPrefix = "consul_http_";
    private readonly HttpClient http = new() { BaseAddress = agent, Timeout = TimeSpan.FromSeconds(60) };

    /// <summary>One reading.</summary>
    public async Task<ConsulCounters> ReadAsync(CancellationToken cancellationToken)
    {
        // An agent saturated by the baselines' processes may answer late: a reading is retried before the run fails.
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                var text = await http.GetStringAsync(new Uri("/v1/agent/metrics?format=prometheus", UriKind.Relative), cancellationToken);
                return Parse(text);
            }
            catch (Exception e) when (attempt < 3 && !cancellationToken.IsCancellationRequested && e is HttpRequestException or TaskCanceledException)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(200), cancellationToken);
            }
        }
    }

    /// <summary>Parses the Prometheus text format (only the series used here).</summary>
    public static ConsulCounters Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var values = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            var space = line.LastIndexOf(' ');
            if (space <= 0 || !double.TryParse(line[(space + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
            {
                continue;
            }

            var name = line[..space];
            values[name] = values.GetValueOrDefault(name) + value;
        }

        double Get(string name) => values.GetValueOrDefault(name);
        var endpoints = values
            .Where(p => p.Key.StartsWith(HttpPrefix, StringComparison.Ordinal) && p.Key.EndsWith("_count", StringComparison.Ordinal)
                && !p.Key.Contains("agent_metrics", StringComparison.Ordinal))
            .ToDictionary(p => p.Key[HttpPrefix.Length..^"_count".Length].TrimEnd('_'), p => p.Value, StringComparer.Ordinal);
        return new ConsulCounters(
            Get("consul_raft_apply"),
            endpoints.Values.Sum(),
            Get("consul_kvs_apply_count"),
            Get("consul_txn_apply_count"),
            Get("consul_session_apply_count"),
            endpoints.Where(p => p.Key.StartsWith("PUT_v1_session_renew", StringComparison.Ordinal)).Sum(p => p.Value),
            Get("consul_raft_verify_leader"),
            endpoints);
    }

    /// <inheritdoc />
    public void Dispose() => http.Dispose();
}
