using Dtask.Consul.Blocking;
using Dtask.Consul.Errors;
using Dtask.Consul.Http;
using Dtask.Consul.Kv;

namespace Dtask.Consul.Locking;

/// <summary>
/// Watches a held lock key with consistent blocking queries. <see cref="Lost"/> fires when the key's session is no
/// longer the holder's (released by an invalidated session, taken by another, or the key deleted), or, when it is
/// linked to the holder's <see cref="SessionRenewal"/>, as soon as that session is lost. Whoever works under the
/// lock must then stop. Dispose when the work is over.
/// </summary>
public sealed class LockKeyWatch : ILockWatch
{
    /// <summary>The wait time of each blocking query unless told otherwise.</summary>
    public static readonly TimeSpan DefaultWaitTime = TimeSpan.FromMinutes(1);

    private const int KeyCause = 1;
    private const int SessionCause = 2;

    private readonly ConsulClient client;
    private readonly TimeProvider time;
    private readonly LostSignal lost = new();
    private readonly CancellationTokenSource stop = new();
    private readonly CancellationTokenRegistration sessionLost;
    private readonly Task watching;
    private int cause; // 0 while held, then KeyCause or SessionCause: whichever came first
    private int disposed;

    private LockKeyWatch(ConsulClient client, string key, string sessionId, ILedgerSession? session, TimeSpan waitTime, TimeSpan startAfter, TimeProvider time)
    {
        this.client = client;
        this.time = time;
        Key = key;
        SessionId = sessionId;
        if (session is not null)
        {
            sessionLost = session.Lost.Register(() => Lose(SessionCause, session.LostReason ?? $"session {sessionId} ended"));
        }

        watching = WatchAsync(waitTime, startAfter);
    }

    /// <summary>The lock key.</summary>
    public string Key { get; }

    /// <summary>The session that holds the key.</summary>
    public string SessionId { get; }

    /// <summary>Cancelled when the lock is lost.</summary>
    public CancellationToken Lost => lost.Token;

    /// <summary>True once <see cref="Lost"/> fired.</summary>
    public bool IsLost => lost.IsLost;

    /// <summary>
    /// Why the lock was lost, or null while it is held. When the linked session was lost first, this is the
    /// session's reason (and <see cref="LostWithSession"/> is true).
    /// </summary>
    public string? LostReason => lost.Reason;

    /// <summary>True when the lock was lost because the linked session was lost, not because of what the key showed.</summary>
    public bool LostWithSession => IsLost && Volatile.Read(ref cause) == SessionCause;

    /// <summary>
    /// Starts watching <paramref name="key"/>, held by <paramref name="session"/>; the watch is lost with the session too.
    /// With <paramref name="startAfter"/>, the first query of the key is sent only after it: work shorter than that costs
    /// no Consul request, and until then only the loss of the session is seen (whoever holds the lock must check it when
    /// writing under it, as in a transaction's <c>check-session</c>).
    /// </summary>
    public static LockKeyWatch Start(ConsulClient client, string key, ILedgerSession session, TimeSpan? waitTime = null, TimeProvider? time = null,
        TimeSpan startAfter = default)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentOutOfRangeException.ThrowIfLessThan(startAfter, TimeSpan.Zero);
        return Start(client, key, session.Id, session, waitTime, startAfter, time);
    }

    /// <summary>Starts watching <paramref name="key"/>, held by <paramref name="sessionId"/>, a session kept alive elsewhere.</summary>
    public static LockKeyWatch Start(ConsulClient client, string key, string sessionId, TimeSpan? waitTime = null, TimeProvider? time = null) =>
        Start(client, key, sessionId, null, waitTime, TimeSpan.Zero, time);

    private static LockKeyWatch Start(ConsulClient client, string key, string sessionId, ILedgerSession? session, TimeSpan? waitTime, TimeSpan startAfter, TimeProvider? time)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentException.ThrowIfNullOrEmpty(key);
        ArgumentException.ThrowIfNullOrEmpty(sessionId);
        return new LockKeyWatch(client, key, sessionId, session, waitTime ?? DefaultWaitTime, startAfter, time ?? TimeProvider.System);
    }

    private async Task WatchAsync(TimeSpan waitTime, TimeSpan startAfter)
    {
        if (startAfter > TimeSpan.Zero)
        {
            try
            {
                await Task.Delay(startAfter, time, stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return; // Disposed before the first query was due.
            }
        }

        var watch = new BlockingQuery<KvPair?>((q, ct) => client.Kv.GetAsync(Key, q, ct),
            new BlockingQueryOptions { WaitTime = waitTime, Consistency = ConsistencyMode.Consistent }, time);
        while (!stop.IsCancellationRequested && !lost.IsLost)
        {
            try
            {
                var current = (await watch.NextAsync(stop.Token).ConfigureAwait(false)).Value;
                if (current is null)
                {
                    Lose(KeyCause, $"lock key '{Key}' was deleted");
                }
                else if (current.Session != SessionId)
                {
                    Lose(KeyCause, current.Session is null
                        ? $"session {SessionId} no longer holds lock key '{Key}' (invalidated or released)"
                        : $"lock key '{Key}' is now held by session {current.Session}");
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (ConsulException)
            {
                // The watch backs off by itself; the session's renewal deadline bounds how long this can go on.
            }
        }
    }

    private void Lose(int by, string why)
    {
        // The cause is settled before the signal fires, so whoever the signal wakes reads the matching one.
        if (Interlocked.CompareExchange(ref cause, by, 0) == 0)
        {
            lost.Lose(why);
        }
    }

    /// <summary>Stops watching. A loss already reported stands; none is reported from now on.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref disposed, 1) == 1)
        {
            return;
        }

        lost.Close();
        await stop.CancelAsync().ConfigureAwait(false);
        await sessionLost.DisposeAsync().ConfigureAwait(false);
        try
        {
            await watching.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Stopped.
        }

        stop.Dispose();
    }
}
