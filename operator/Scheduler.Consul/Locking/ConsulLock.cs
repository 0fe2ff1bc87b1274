using Dtask.Consul.Blocking;
using Dtask.Consul.Errors;
using Dtask.Consul.Http;
using Dtask.Consul.Kv;

namespace Dtask.Consul.Locking;

/// <summary>
/// A held Consul lock, in the manner of Consul's own <c>api/lock.go</c>: a session that acquired a key, kept alive by
/// a <see cref="SessionRenewal"/> (when the lock owns the session), and a <see cref="LockKeyWatch"/> on the key.
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
    private readonly SessionRenewal? renewal;
    private readonly LockKeyWatch watch;
    private int disposed;

    private ConsulLock(ConsulClient client, LockOptions options, TimeProvider time, string sessionId, SessionRenewal? renewal, KvPair acquired)
    {
        this.client = client;
        this.options = options;
        this.renewal = renewal;
        SessionId = sessionId;
        Acquired = acquired;
        watch = renewal is null
            ? LockKeyWatch.Start(client, options.Key, sessionId, options.MonitorWaitTime, time)
            : LockKeyWatch.Start(client, options.Key, renewal, options.MonitorWaitTime, time);
    }

    /// <summary>The lock key.</summary>
    public string Key => options.Key;

    /// <summary>The session holding the lock.</summary>
    public string SessionId { get; }

    /// <summary>The key as read right after acquiring: its ModifyIndex is a fence token, its LockIndex counts acquisitions.</summary>
    public KvPair Acquired { get; }

    /// <summary>Cancelled when the lock is lost; see the class remarks.</summary>
    public CancellationToken LostToken => watch.Lost;

    /// <summary>True once <see cref="LostToken"/> has fired.</summary>
    public bool IsLost => watch.IsLost;

    /// <summary>Why the lock was lost, or null while it is held.</summary>
    public string? LostReason => watch.LostReason;

    /// <summary>
    /// Tries once to take the lock; null when another session holds it or its lock-delay is in force.
    /// </summary>
    public static async Task<ConsulLock?> TryAcquireAsync(ConsulClient client, LockOptions options, TimeProvider? time = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(options);
        time ??= TimeProvider.System;
        var renewal = await OpenSessionAsync(client, options, time, cancellationToken).ConfigureAwait(false);
        var sessionId = renewal?.Id ?? options.SessionId!;
        try
        {
            if (await TryTakeAsync(client, options, sessionId, cancellationToken).ConfigureAwait(false) is { } held)
            {
                return new ConsulLock(client, options, time, sessionId, renewal, held);
            }
        }
        catch
        {
            await CloseAsync(renewal).ConfigureAwait(false);
            throw;
        }

        await CloseAsync(renewal).ConfigureAwait(false);
        return null;
    }

    /// <summary>
    /// Takes the lock, waiting (with blocking queries on the key) while another session holds it and retrying
    /// while lock-delay is in force, until <paramref name="cancellationToken"/> is cancelled. The lock's own session
    /// is renewed all the while; if it is lost while waiting, a <see cref="ConsulNotFoundException"/> is thrown.
    /// </summary>
    public static async Task<ConsulLock> AcquireAsync(ConsulClient client, LockOptions options, TimeProvider? time = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(options);
        time ??= TimeProvider.System;
        var renewal = await OpenSessionAsync(client, options, time, cancellationToken).ConfigureAwait(false);
        var sessionId = renewal?.Id ?? options.SessionId!;
        try
        {
            using var waiting = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, renewal?.Lost ?? CancellationToken.None);
            var keyWatch = new BlockingQuery<KvPair?>((q, ct) => client.Kv.GetAsync(options.Key, q, ct),
                new BlockingQueryOptions { WaitTime = options.MonitorWaitTime, Consistency = ConsistencyMode.Consistent }, time);
            var sawLocked = true;
            while (true)
            {
                try
                {
                    if (await TryTakeAsync(client, options, sessionId, waiting.Token).ConfigureAwait(false) is { } held)
                    {
                        return new ConsulLock(client, options, time, sessionId, renewal, held);
                    }

                    if (sawLocked)
                    {
                        // Held by another session: wait for the key to change.
                        var current = await keyWatch.NextAsync(waiting.Token).ConfigureAwait(false);
                        sawLocked = current.Value is { IsLocked: true };
                    }
                    else
                    {
                        // Free but not taken: the lock-delay of the last holder is in force, which no change of the
                        // key will announce. Retry after a pause, and watch again once someone else holds it.
                        var current = await client.Kv.GetAsync(options.Key, QueryOptions.ConsistentRead, waiting.Token).ConfigureAwait(false);
                        sawLocked = current.Value is { IsLocked: true };
                    }

                    if (!sawLocked)
                    {
                        await Task.Delay(options.RetryInterval, time, waiting.Token).ConfigureAwait(false);
                    }
                }
                catch (OperationCanceledException) when (renewal is { IsLost: true } && !cancellationToken.IsCancellationRequested)
                {
                    throw new ConsulNotFoundException(sessionId, $"the lock's session was lost while waiting for '{options.Key}': {renewal.LostReason}");
                }
            }
        }
        catch
        {
            await CloseAsync(renewal).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>The lock's own session, renewed from now on; null when the lock uses a session kept by someone else.</summary>
    private static async Task<SessionRenewal?> OpenSessionAsync(ConsulClient client, LockOptions options, TimeProvider time, CancellationToken cancellationToken) =>
        options.SessionId is null
            ? await SessionRenewal.CreateAsync(client, options.SessionRenewal(), time, cancellationToken).ConfigureAwait(false)
            : null;

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

    private static async Task CloseAsync(SessionRenewal? renewal)
    {
        if (renewal is not null)
        {
            await renewal.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Stops renewing and watching, releases the key if still held, and destroys the lock's own session.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref disposed, 1) == 1)
        {
            return;
        }

        await watch.DisposeAsync().ConfigureAwait(false);
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

        await CloseAsync(renewal).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public override string ToString() => $"lock '{Key}' held by session {SessionId}{(IsLost ? " (lost: " + LostReason + ")" : "")}";
}
