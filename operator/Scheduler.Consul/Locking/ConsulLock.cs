using Dtask.Consul.Blocking;
using Dtask.Consul.Errors;
using Dtask.Consul.Http;
using Dtask.Consul.Kv;
using Dtask.Consul.Sessions;

namespace Dtask.Consul.Locking;

/// <summary>
/// A held Consul lock, in the manner of Consul's own <c>api/lock.go</c>: a session that acquired a key, a timer
/// that renews the session (when the lock owns it), and a watch of the key with consistent blocking queries.
/// <see cref="LostToken"/> is cancelled the moment the lock is known or suspected to be lost: the key's session
/// changed or was cleared, the key was deleted, a renewal answered 404, or no renewal succeeded for the TTL minus
/// a margin. Whoever holds the lock must stop its work when that token fires.
/// <para>
/// Sessions prefer liveness over safety: Consul frees the lock when the session is invalidated (TTL expiry, a
/// destroy by anyone with the right), whether or not the holder noticed. A holder that is paused or partitioned
/// keeps running while another takes the lock after the lock-delay; the token only fires once this process
/// runs again. Work that writes to other systems must carry a fence (the key's ModifyIndex) so they can refuse
/// a stale holder.
/// </para>
/// Disposing releases the key and destroys the lock's own session.
/// </summary>
public sealed class ConsulLock : IAsyncDisposable
{
    private readonly ConsulClient client;
    private readonly LockOptions options;
    private readonly TimeProvider time;
    private readonly bool ownsSession;
    private readonly CancellationTokenSource lost = new();
    private readonly CancellationTokenSource stop = new();
    private readonly ITimer? renewalDeadline;
    private readonly Task renewing;
    private readonly Task monitoring;
    private readonly CancellationToken lostToken;
    private string? lostReason;
    private int disposed;

    private ConsulLock(ConsulClient client, LockOptions options, TimeProvider time, string sessionId, bool ownsSession,
        KvPair acquired, TimeSpan ttl, long renewedAt)
    {
        this.client = client;
        this.options = options;
        this.time = time;
        this.ownsSession = ownsSession;
        SessionId = sessionId;
        Acquired = acquired;
        lostToken = lost.Token;
        if (ownsSession)
        {
            // Measured from before the last successful renewal was sent: the server's TTL clock started later.
            var remaining = options.LostAfter(ttl) - time.GetElapsedTime(renewedAt);
            renewalDeadline = time.CreateTimer(_ => Lose($"no successful renewal of session {sessionId} for {options.LostAfter(ttl).TotalSeconds:0.#} s"),
                null, remaining > TimeSpan.Zero ? remaining : TimeSpan.Zero, Timeout.InfiniteTimeSpan);
            renewing = RenewLoopAsync(ttl);
        }
        else
        {
            renewing = Task.CompletedTask;
        }
        monitoring = MonitorLoopAsync();
    }

    /// <summary>The lock key.</summary>
    public string Key => options.Key;

    /// <summary>The session holding the lock.</summary>
    public string SessionId { get; }

    /// <summary>The key as read right after acquiring: its ModifyIndex is a fence token, its LockIndex counts acquisitions.</summary>
    public KvPair Acquired { get; }

    /// <summary>Cancelled when the lock is lost; see the class remarks.</summary>
    public CancellationToken LostToken => lostToken;

    /// <summary>True once <see cref="LostToken"/> has fired.</summary>
    public bool IsLost => lostToken.IsCancellationRequested;

    /// <summary>Why the lock was lost, or null while it is held.</summary>
    public string? LostReason => Volatile.Read(ref lostReason);

    /// <summary>
    /// Tries once to take the lock; null when another session holds it or its lock-delay is in force.
    /// </summary>
    public static async Task<ConsulLock?> TryAcquireAsync(ConsulClient client, LockOptions options, TimeProvider? time = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(options);
        time ??= TimeProvider.System;
        var (sessionId, ttl, createdAt) = await OpenSessionAsync(client, options, time, cancellationToken).ConfigureAwait(false);
        try
        {
            var held = await TryTakeAsync(client, options, sessionId, cancellationToken).ConfigureAwait(false);
            if (held is not null)
            {
                return new ConsulLock(client, options, time, sessionId, options.SessionId is null, held, ttl, createdAt);
            }
        }
        catch
        {
            await CloseSessionAsync(client, options, sessionId).ConfigureAwait(false);
            throw;
        }
        await CloseSessionAsync(client, options, sessionId).ConfigureAwait(false);
        return null;
    }

    /// <summary>
    /// Takes the lock, waiting (with blocking queries on the key) while another session holds it and retrying
    /// while lock-delay is in force, until <paramref name="cancellationToken"/> is cancelled.
    /// </summary>
    public static async Task<ConsulLock> AcquireAsync(ConsulClient client, LockOptions options, TimeProvider? time = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(options);
        time ??= TimeProvider.System;
        var (sessionId, ttl, renewedAt) = await OpenSessionAsync(client, options, time, cancellationToken).ConfigureAwait(false);
        try
        {
            var watch = new BlockingQuery<KvPair?>((q, ct) => client.Kv.GetAsync(options.Key, q, ct),
                new BlockingQueryOptions { WaitTime = ttl / 3, Consistency = ConsistencyMode.Consistent }, time);
            while (true)
            {
                if (await TryTakeAsync(client, options, sessionId, cancellationToken).ConfigureAwait(false) is { } held)
                {
                    return new ConsulLock(client, options, time, sessionId, options.SessionId is null, held, ttl, renewedAt);
                }
                var current = await watch.NextAsync(cancellationToken).ConfigureAwait(false);
                if (current.Value is not { IsLocked: true })
                {
                    await Task.Delay(options.RetryInterval, time, cancellationToken).ConfigureAwait(false);
                }
                if (options.SessionId is null && time.GetElapsedTime(renewedAt) > options.RenewIntervalFor(ttl))
                {
                    var started = time.GetTimestamp();
                    ttl = Positive((await client.Sessions.RenewAsync(sessionId, cancellationToken).ConfigureAwait(false)).Value.Ttl, ttl);
                    renewedAt = started;
                }
            }
        }
        catch
        {
            await CloseSessionAsync(client, options, sessionId).ConfigureAwait(false);
            throw;
        }
    }

    private static async Task<(string SessionId, TimeSpan Ttl, long At)> OpenSessionAsync(ConsulClient client, LockOptions options, TimeProvider time, CancellationToken cancellationToken)
    {
        if (options.SessionId is { } given)
        {
            return (given, options.SessionTtl, time.GetTimestamp());
        }
        var at = time.GetTimestamp();
        var request = new SessionRequest(options.SessionName, options.SessionTtl) { LockDelay = options.LockDelay, Behavior = options.Behavior };
        var created = await client.Sessions.CreateAsync(request, cancellationToken).ConfigureAwait(false);
        return (created.Value, options.SessionTtl, at);
    }

    private static async Task<KvPair?> TryTakeAsync(ConsulClient client, LockOptions options, string sessionId, CancellationToken cancellationToken)
    {
        var put = await client.Kv.PutAsync(options.Key, options.Value, new KvPutOptions { Acquire = sessionId }, cancellationToken).ConfigureAwait(false);
        if (!put.Value)
        {
            return null;
        }
        var read = await client.Kv.GetAsync(options.Key, QueryOptions.ConsistentRead, cancellationToken).ConfigureAwait(false);
        return read.Value is { } pair && pair.Session == sessionId ? pair : null;
    }

    private static async Task CloseSessionAsync(ConsulClient client, LockOptions options, string sessionId)
    {
        if (options.SessionId is not null)
        {
            return;
        }
        try
        {
            using var timeout = new CancellationTokenSource(client.Options.RequestTimeout);
            await client.Sessions.DestroyAsync(sessionId, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is ConsulException or OperationCanceledException)
        {
            // The session expires by its TTL anyway.
        }
    }

    private static TimeSpan Positive(TimeSpan value, TimeSpan fallback) => value > TimeSpan.Zero ? value : fallback;

    private async Task RenewLoopAsync(TimeSpan ttl)
    {
        var interval = options.RenewIntervalFor(ttl);
        while (!stop.IsCancellationRequested && !lost.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(interval, time, stop.Token).ConfigureAwait(false);
                var started = time.GetTimestamp();
                var renewed = await client.Sessions.RenewAsync(SessionId, stop.Token).ConfigureAwait(false);
                // Adopt the TTL the server returns: it may be longer than the one asked for.
                ttl = Positive(renewed.Value.Ttl, ttl);
                interval = options.RenewIntervalFor(ttl);
                var remaining = options.LostAfter(ttl) - time.GetElapsedTime(started);
                renewalDeadline?.Change(remaining > TimeSpan.Zero ? remaining : TimeSpan.Zero, Timeout.InfiniteTimeSpan);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (ConsulNotFoundException)
            {
                Lose($"session {SessionId} no longer exists (renewal answered 404)");
                return;
            }
            catch (ConsulException)
            {
                // Try again sooner; the renewal deadline decides when it is too late.
                interval = options.RenewIntervalFor(ttl) / 3;
            }
        }
    }

    private async Task MonitorLoopAsync()
    {
        var watch = new BlockingQuery<KvPair?>((q, ct) => client.Kv.GetAsync(Key, q, ct),
            new BlockingQueryOptions { WaitTime = options.MonitorWaitTime, Consistency = ConsistencyMode.Consistent }, time);
        while (!stop.IsCancellationRequested && !lost.IsCancellationRequested)
        {
            try
            {
                var current = (await watch.NextAsync(stop.Token).ConfigureAwait(false)).Value;
                if (current is null)
                {
                    Lose($"lock key '{Key}' was deleted");
                }
                else if (current.Session != SessionId)
                {
                    Lose(current.Session is null
                        ? $"lock key '{Key}' was released (session {SessionId} invalidated or released)"
                        : $"lock key '{Key}' is now held by session {current.Session}");
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (ConsulException)
            {
                // The watch backs off by itself; the renewal deadline bounds how long this can go on.
            }
        }
    }

    private void Lose(string reason)
    {
        if (Interlocked.CompareExchange(ref lostReason, reason, null) is null && !stop.IsCancellationRequested)
        {
            try
            {
                lost.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // Disposed concurrently: nobody is listening any more.
            }
        }
    }

    /// <summary>Stops renewing and watching, releases the key if still held, and destroys the lock's own session.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref disposed, 1) == 1)
        {
            return;
        }
        await stop.CancelAsync().ConfigureAwait(false);
        renewalDeadline?.Dispose();
        try
        {
            await Task.WhenAll(renewing, monitoring).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Stopped.
        }
        if (!IsLost)
        {
            try
            {
                using var timeout = new CancellationTokenSource(client.Options.RequestTimeout);
                await client.Kv.PutAsync(Key, options.Value, new KvPutOptions { Release = SessionId }, timeout.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is ConsulException or OperationCanceledException)
            {
                // Destroying the session below releases it too.
            }
        }
        await CloseSessionAsync(client, options, SessionId).ConfigureAwait(false);
        stop.Dispose();
        // `lost` is left undisposed on purpose: holders may still look at LostToken after disposal.
    }

    /// <inheritdoc />
    public override string ToString() => $"lock '{Key}' held by session {SessionId}{(IsLost ? " (lost: " + LostReason + ")" : "")}";
}
