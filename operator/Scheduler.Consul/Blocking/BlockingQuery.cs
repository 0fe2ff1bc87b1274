using Dtask.Consul.Errors;
using Dtask.Consul.Http;

namespace Dtask.Consul.Blocking;

/// <summary>Tuning of a <see cref="BlockingQuery{T}"/>.</summary>
public sealed record BlockingQueryOptions
{
    /// <summary>The longest one request blocks (Consul caps it at 10 minutes).</summary>
    public TimeSpan WaitTime { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>The consistency mode of each request.</summary>
    public ConsistencyMode Consistency { get; init; }

    /// <summary>
    /// The least time between two requests when the last one brought no change (Consul may return early
    /// without a change) or reset the index: what keeps a watcher out of a tight loop.
    /// </summary>
    public TimeSpan MinInterval { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>
    /// When set, the least time between an answer that brought a change and the next request, asked after each such
    /// answer (null: the next request goes at once). Changes made meanwhile come in the next answer, at once: a watcher
    /// of a folder that many writers change often is woken at most once per pace instead of once per write.
    /// </summary>
    public Func<TimeSpan>? ChangePace { get; init; }

    /// <summary>The wait before the request after a failure; doubled per consecutive failure.</summary>
    public TimeSpan ErrorBackoff { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>The longest wait after failures.</summary>
    public TimeSpan MaxErrorBackoff { get; init; } = TimeSpan.FromSeconds(30);
}

/// <summary>
/// Watches one Consul read with blocking queries and hands back each new state. It keeps the last
/// <c>X-Consul-Index</c> and follows Consul's rules for clients: the index is only a "something may have
/// changed" signal; when it goes backwards (a server restored from a snapshot, a rebuilt cluster) or comes back
/// as 0 the watcher resets and takes the answer as a fresh state; it never blocks on index 0; and it waits at
/// least <see cref="BlockingQueryOptions.MinInterval"/> between requests that changed nothing, and backs off
/// after errors. Not thread-safe: one caller drives it.
/// </summary>
/// <typeparam name="T">The decoded value.</typeparam>
public sealed class BlockingQuery<T>
{
    private readonly Func<QueryOptions, CancellationToken, Task<ConsulResponse<T>>> query;
    private readonly BlockingQueryOptions options;
    private readonly TimeProvider time;
    private DateTimeOffset notBefore = DateTimeOffset.MinValue;
    private int consecutiveFailures;

    /// <summary>Creates a watcher of <paramref name="query"/>, e.g. <c>(q, ct) =&gt; client.Kv.GetAsync(key, q, ct)</c>.</summary>
    public BlockingQuery(Func<QueryOptions, CancellationToken, Task<ConsulResponse<T>>> query, BlockingQueryOptions? options = null, TimeProvider? time = null)
    {
        this.query = query ?? throw new ArgumentNullException(nameof(query));
        this.options = options ?? new BlockingQueryOptions();
        this.time = time ?? TimeProvider.System;
    }

    /// <summary>The index the next request blocks on; 0 before the first answer and after a reset.</summary>
    public ulong Index { get; private set; }

    /// <summary>How many times the index went backwards or came back as 0 and was reset.</summary>
    public int Resets { get; private set; }

    /// <summary>
    /// Returns the first state (without blocking) on the first call, then waits for the next change: requests
    /// that come back with the same index (the wait elapsed) are repeated. A failure is thrown to the caller
    /// and delays the next request (backoff).
    /// </summary>
    public async Task<ConsulResponse<T>> NextAsync(CancellationToken cancellationToken = default)
    {
        while (true)
        {
            var delay = notBefore - time.GetUtcNow();
            if (delay > TimeSpan.Zero)
            {
                await Task.Delay(delay, time, cancellationToken).ConfigureAwait(false);
            }

            var previous = Index;
            var request = new QueryOptions
            {
                Consistency = options.Consistency,
                WaitIndex = previous,
                WaitTime = previous > 0 ? options.WaitTime : null,
            };
            ConsulResponse<T> response;
            try
            {
                response = await query(request, cancellationToken).ConfigureAwait(false);
            }
            catch (ConsulException)
            {
                consecutiveFailures++;
                var backoff = options.ErrorBackoff * Math.Pow(2, Math.Min(consecutiveFailures - 1, 16));
                notBefore = time.GetUtcNow() + (backoff < options.MaxErrorBackoff ? backoff : options.MaxErrorBackoff);
                throw;
            }
            consecutiveFailures = 0;

            var index = response.Meta.Index;
            if (index == 0 || index < previous)
            {
                // Sanity check from Consul's docs: an index that is 0 or went backwards means the watcher's
                // notion of "current" is void. Start over: this answer is the fresh state, and the next
                // request is not allowed to come at once.
                Index = index;
                Resets++;
                notBefore = time.GetUtcNow() + options.MinInterval;
                return response;
            }
            if (index == previous)
            {
                notBefore = time.GetUtcNow() + options.MinInterval;
                continue;
            }
            Index = index;
            notBefore = options.ChangePace is { } pace && pace() is { Ticks: > 0 } least ? time.GetUtcNow() + least : DateTimeOffset.MinValue;
            return response;
        }
    }
}
