namespace Dtask.Consul.Http;

/// <summary>
/// Counts the HTTP requests a client sent (every attempt, retries included) and, among them, the writes
/// (PUT and DELETE; a transaction counts as one write).
/// </summary>
public sealed class ConsulRequestCounters
{
    private long requests;
    private long writes;

    /// <summary>HTTP requests sent so far.</summary>
    public long Requests => Interlocked.Read(ref requests);

    /// <summary>Write requests (PUT, DELETE) sent so far.</summary>
    public long Writes => Interlocked.Read(ref writes);

    /// <summary>
    /// Raised when a request is over, on the sending thread: its path (e.g. <c>/v1/kv/…</c>), method, and whether it failed
    /// (unreachable, timed out, or an error status it did not accept).
    /// </summary>
    public event Action<string, string, bool>? Completed;

    /// <summary>Both counters read at once (each is exact; the pair is not an atomic snapshot).</summary>
    public ConsulRequestCount Snapshot() => new(Requests, Writes);

    internal void Finished(string path, string method, bool failed) => Completed?.Invoke(path, method, failed);

    internal void Count(bool isWrite)
    {
        Interlocked.Increment(ref requests);
        if (isWrite)
        {
            Interlocked.Increment(ref writes);
        }
    }
}

/// <summary>Request counts at one moment; subtract two to measure a piece of work.</summary>
public readonly record struct ConsulRequestCount(long Requests, long Writes)
{
    /// <summary>The requests made between <paramref name="earlier"/> and this count.</summary>
    public ConsulRequestCount Since(ConsulRequestCount earlier) => new(Requests - earlier.Requests, Writes - earlier.Writes);
}
