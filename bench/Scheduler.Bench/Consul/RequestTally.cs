using System.Text.RegularExpressions;

namespace Dtask.Bench.Consul;

/// <summary>What an HTTP request to the agent was for, by its URL.</summary>
internal enum RequestKind
{
    /// <summary>The work of a fire: reads of <c>state/</c> (run records, history, locks) and transactions (claims, finishes, markers).</summary>
    FirePath,

    /// <summary>Membership: the <c>nodes/</c> watch and the registrations' stamps.</summary>
    Membership,

    /// <summary>Session creation, renewal and destruction.</summary>
    Sessions,

    /// <summary>Anything else: the <c>tasks/</c> and <c>control/</c> watches, status, metrics.</summary>
    Other,
}

/// <summary>What a fire-path request was, by its URL: the profile of a fire's requests.</summary>
internal enum FirePathPart
{
    /// <summary>A stale read of a <c>state/</c> key: a later rank's look at the run record.</summary>
    StaleRead,

    /// <summary>A consistent read: of a <c>state/</c> key, or a read-only transaction with <c>?consistent</c> (the claims' batched reads).</summary>
    ConsistentRead,

    /// <summary>A transaction without a read mode: a claim, a finish, a marker (or a default-mode read-only batch).</summary>
    Transaction,

    /// <summary>A listing of a task's history keys (<c>?keys</c>): the trimming of a finish, the window check of a marker.</summary>
    HistoryListing,

    /// <summary>Anything else under <c>state/</c>: plain reads and writes of single keys.</summary>
    Other,
}

/// <summary>
/// Counts the agent's HTTP requests by <see cref="RequestKind"/>, from its debug log (one <c>Request finished:
/// method=… url=…</c> line per request), so that the requests of the fires can be told from each executor's standing
/// ones (session renewals, watches, stamps) exactly, instead of by subtracting an idle window: with hundreds of
/// executors on one agent the standing requests are far more than the fires', and their drift between two windows
/// would swamp the difference.
/// </summary>
internal sealed partial class RequestTally
{
    private readonly long[] counts = new long[4];
    private readonly long[] parts = new long[5];
    private long firePathWrites;

    /// <summary>The counts so far, by kind.</summary>
    public IReadOnlyDictionary<RequestKind, long> Snapshot() => Enum.GetValues<RequestKind>().ToDictionary(k => k, k => Interlocked.Read(ref counts[(int)k]));

    /// <summary>The fire path's counts so far, by part.</summary>
    public IReadOnlyDictionary<FirePathPart, long> FirePathParts() => Enum.GetValues<FirePathPart>().ToDictionary(k => k, k => Interlocked.Read(ref parts[(int)k]));

    /// <summary>A profile line: each part's requests per fire, from two <see cref="FirePathParts"/> snapshots and the fires between them.</summary>
    public static string Profile(IReadOnlyDictionary<FirePathPart, long> before, IReadOnlyDictionary<FirePathPart, long> after, double fires)
    {
        ArgumentNullException.ThrowIfNull(before);
        ArgumentNullException.ThrowIfNull(after);
        return string.Join(", ", Enum.GetValues<FirePathPart>().Select(part => string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"{Describe(part)} {(after[part] - before[part]) / fires:0.00}")));
    }

    private static string Describe(FirePathPart part) => part switch
    {
        FirePathPart.StaleRead => "stale reads",
        FirePathPart.ConsistentRead => "consistent reads",
        FirePathPart.Transaction => "transactions",
        FirePathPart.HistoryListing => "history listings",
        _ => "other",
    };

    /// <summary>Of the fire path's requests so far, the writes: transactions that are not read-only (no <c>consistent</c>
    /// or <c>stale</c> mode) and writes of <c>state/</c> keys, each one Raft apply.</summary>
    public long FirePathWrites => Interlocked.Read(ref firePathWrites);

    /// <summary>Takes one line of the agent's log.</summary>
    public void Read(string line)
    {
        var match = Finished().Match(line);
        if (match.Success)
        {
            var (method, url) = (match.Groups[1].Value, match.Groups[2].Value);
            var kind = Classify(method, url);
            Interlocked.Increment(ref counts[(int)kind]);
            if (kind == RequestKind.FirePath)
            {
                Interlocked.Increment(ref parts[(int)PartOf(method, url)]);
                if (IsWrite(method, url))
                {
                    Interlocked.Increment(ref firePathWrites);
                }
            }
        }
    }

    /// <summary>The kind of a request from its method and URL (path and query).</summary>
    public static RequestKind Classify(string method, string url)
    {
        ArgumentNullException.ThrowIfNull(url);
        var path = url.Split('?', 2)[0];
        if (path.StartsWith("/v1/txn", StringComparison.Ordinal) || path.Contains("/state/", StringComparison.Ordinal))
        {
            return RequestKind.FirePath;
        }

        if (path.Contains("/nodes/", StringComparison.Ordinal))
        {
            return RequestKind.Membership;
        }

        return path.StartsWith("/v1/session/", StringComparison.Ordinal) ? RequestKind.Sessions : RequestKind.Other;
    }

    /// <summary>The part of a fire-path request, from its method and URL.</summary>
    public static FirePathPart PartOf(string method, string url)
    {
        ArgumentNullException.ThrowIfNull(url);
        var query = url.Split('?', 2) is [_, var q] ? q : "";
        if (query.Contains("keys", StringComparison.Ordinal))
        {
            return FirePathPart.HistoryListing;
        }

        if (query.Contains("stale", StringComparison.Ordinal))
        {
            return FirePathPart.StaleRead;
        }

        if (query.Contains("consistent", StringComparison.Ordinal))
        {
            return FirePathPart.ConsistentRead;
        }

        return url.StartsWith("/v1/txn", StringComparison.Ordinal) ? FirePathPart.Transaction : FirePathPart.Other;
    }

    private static bool IsWrite(string method, string url)
    {
        if (method is not ("PUT" or "DELETE"))
        {
            return false;
        }

        var query = url.Split('?', 2) is [_, var q] ? q : "";
        return !url.StartsWith("/v1/txn", StringComparison.Ordinal)
            || !(query.Contains("consistent", StringComparison.Ordinal) || query.Contains("stale", StringComparison.Ordinal));
    }

    [GeneratedRegex(@"Request finished: method=(\w+) url=(\S+)")]
    private static partial Regex Finished();
}
