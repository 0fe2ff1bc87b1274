using Dtask.Consul;
using Dtask.Consul.Blocking;
using Dtask.Consul.Errors;
using Dtask.Consul.Http;
using Dtask.Consul.Kv;

namespace Dtask.Executor.Claims;

/// <summary>
/// Watches one task's lock key while its run goes on, with blocking queries: <see cref="Lost"/> fires when the key's
/// session is no longer the executor's (released by an invalidated session, taken by another, or the key deleted),
/// or when the executor's session itself is lost. The child must then be stopped. Dispose when the run is over.
/// </summary>
public sealed class LockWatch : IAsyncDisposable
{
    private readonly ConsulClient client;
    private readonly string sessionId;
    private readonly TimeProvider time;
    private readonly CancellationTokenSource lost = new();
    private readonly CancellationTokenSource stop = new();
    private readonly CancellationTokenRegistration sessionLost;
    private readonly Task watching;
    private readonly CancellationToken lostToken;
    private string? lostReason;

    private LockWatch(ConsulClient client, string key, ExecutorSession session, TimeSpan waitTime, TimeProvider time)
    {
        this.client = client;
        sessionId = session.Id;
        this.time = time;
        Key = key;
        lostToken = lost.Token;
        sessionLost = session.Lost.Register(() => Lose("session-lost: " + (session.LostReason ?? "the executor's session ended")));
        watching = WatchAsync(waitTime);
    }

    /// <summary>The lock key.</summary>
    public string Key { get; }

    /// <summary>Cancelled when the lock is lost.</summary>
    public CancellationToken Lost => lostToken;

    /// <summary>True once <see cref="Lost"/> fired.</summary>
    public bool IsLost => lostToken.IsCancellationRequested;

    /// <summary>Why the lock was lost, or null while it is held.</summary>
    public string? LostReason => Volatile.Read(ref lostReason);

    /// <summary>Starts watching <paramref name="key"/>, held by <paramref name="session"/>.</summary>
    public static LockWatch Start(ConsulClient client, string key, ExecutorSession session, TimeSpan? waitTime = null, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentException.ThrowIfNullOrEmpty(key);
        ArgumentNullException.ThrowIfNull(session);
        return new LockWatch(client, key, session, waitTime ?? TimeSpan.FromMinutes(1), time ?? TimeProvider.System);
    }

    private async Task WatchAsync(TimeSpan waitTime)
    {
        var watch = new BlockingQuery<KvPair?>((q, ct) => client.Kv.GetAsync(Key, q, ct),
            new BlockingQueryOptions { WaitTime = waitTime, Consistency = ConsistencyMode.Consistent }, time);
        while (!stop.IsCancellationRequested && !lost.IsCancellationRequested)
        {
            try
            {
                var current = (await watch.NextAsync(stop.Token).ConfigureAwait(false)).Value;
                if (current is null)
                {
                    Lose($"lock-lost: lock key '{Key}' was deleted");
                }
                else if (current.Session != sessionId)
                {
                    Lose(current.Session is null
                        ? $"lock-lost: session {sessionId} no longer holds '{Key}' (invalidated or released)"
                        : $"lock-lost: '{Key}' is now held by session {current.Session}");
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
                // Disposed concurrently.
            }
        }
    }

    /// <summary>Stops watching.</summary>
    public async ValueTask DisposeAsync()
    {
        if (stop.IsCancellationRequested)
        {
            return;
        }

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
