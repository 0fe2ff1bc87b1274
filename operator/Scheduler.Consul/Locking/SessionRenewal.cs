using Dtask.Consul.Errors;
using Dtask.Consul.Http;

namespace Dtask.Consul.Locking;

/// <summary>
/// Keeps one TTL session alive, in the manner of Consul's own <c>api/lock.go</c>: it renews the session every
/// TTL/3 on its own <see cref="TimeProvider"/> timer, adopts the TTL the server answers with, and fires
/// <see cref="Lost"/> when a renewal answers 404 and a consistent read confirms it (the session was destroyed or
/// expired; a leader that has not yet applied its log may answer 404 for a live session) or when no renewal has
/// succeeded for the TTL minus a margin (Consul may already have expired it). Every lock held with the session is
/// then gone, and whoever works under one must stop.
/// </summary>
/// <remarks>
/// Sessions prefer liveness over safety: Consul may invalidate a session whose holder is merely slow, and a paused
/// or partitioned holder learns of it only when it runs again. Work that writes elsewhere must carry a fence (the
/// lock key's ModifyIndex) for that case. Disposing stops renewing and, when the session was created here, destroys
/// it (which releases or deletes the keys it holds).
/// </remarks>
public sealed class SessionRenewal : ILedgerSession, IAsyncDisposable
{
    private readonly ConsulClient client;
    private readonly SessionRenewalOptions options;
    private readonly TimeProvider time;
    private readonly bool owned;
    private readonly LostSignal lost = new();
    private readonly CancellationTokenSource stop = new();
    private readonly ITimer deadline;
    private readonly Task renewing;
    private int renewals;
    private int disposed;
    private long lastRenewedAt;

    private SessionRenewal(ConsulClient client, SessionRenewalOptions options, TimeProvider time, string id, bool owned, long renewedAt)
    {
        this.client = client;
        this.options = options;
        this.time = time;
        this.owned = owned;
        Id = id;
        Ttl = options.Ttl;
        lastRenewedAt = renewedAt;
        // Measured from before the last successful renewal (or the creation) was sent: the server's clock started later.
        deadline = time.CreateTimer(_ => lost.Lose($"no successful renewal of session {id} for {options.LostAfter(Ttl).TotalSeconds:0.#} s"),
            null, Remaining(renewedAt), Timeout.InfiniteTimeSpan);
        options.DeadlineObserver?.Invoke(Remaining(renewedAt));
        renewing = RenewLoopAsync();
    }

    /// <summary>The session id.</summary>
    public string Id { get; }

    /// <summary>The TTL in force (the server may raise it on renewal).</summary>
    public TimeSpan Ttl { get; private set; }

    /// <summary>Cancelled when the session is lost; see the class remarks.</summary>
    public CancellationToken Lost => lost.Token;

    /// <summary>True once <see cref="Lost"/> fired.</summary>
    public bool IsLost => lost.IsLost;

    /// <summary>Why the session was lost, or null while it lives.</summary>
    public string? LostReason => lost.Reason;

    /// <summary>
    /// True once the renewal deadline has passed on this process's monotonic clock, even before the deadline's timer ran
    /// (a process that was paused sees it at once when it resumes): whatever it held may already be lost.
    /// </summary>
    public bool IsPastDeadline => lost.IsLost || Remaining(Interlocked.Read(ref lastRenewedAt)) == TimeSpan.Zero;

    /// <summary>How many renewals succeeded.</summary>
    public int Renewals => Volatile.Read(ref renewals);

    /// <summary>Creates a TTL-only session and starts renewing it; disposing destroys it.</summary>
    /// <exception cref="ConsulException">Consul refused or could not be reached.</exception>
    public static async Task<SessionRenewal> CreateAsync(ConsulClient client, SessionRenewalOptions? options = null, TimeProvider? time = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        options ??= new SessionRenewalOptions();
        time ??= TimeProvider.System;
        var at = time.GetTimestamp();
        var created = await client.Sessions.CreateAsync(options.Request(), cancellationToken).ConfigureAwait(false);
        return new SessionRenewal(client, options, time, created.Value, owned: true, at);
    }

    /// <summary>
    /// Starts renewing a session created elsewhere (last renewed about now). Disposing stops renewing but leaves the
    /// session to its creator.
    /// </summary>
    public static SessionRenewal Adopt(ConsulClient client, string sessionId, SessionRenewalOptions? options = null, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentException.ThrowIfNullOrEmpty(sessionId);
        time ??= TimeProvider.System;
        return new SessionRenewal(client, options ?? new SessionRenewalOptions(), time, sessionId, owned: false, time.GetTimestamp());
    }

    private TimeSpan Remaining(long renewedAt)
    {
        var remaining = options.LostAfter(Ttl) - time.GetElapsedTime(renewedAt);
        return remaining > TimeSpan.Zero ? remaining : TimeSpan.Zero;
    }

    private async Task RenewLoopAsync()
    {
        var interval = options.RenewEvery(Ttl);
        while (!stop.IsCancellationRequested && !lost.IsLost)
        {
            try
            {
                await Task.Delay(interval, time, stop.Token).ConfigureAwait(false);
                var started = time.GetTimestamp();
                var renewed = await client.Sessions.RenewAsync(Id, stop.Token).ConfigureAwait(false);
                if (renewed.Value.Ttl > TimeSpan.Zero)
                {
                    Ttl = renewed.Value.Ttl;
                }

                Interlocked.Increment(ref renewals);
                options.RenewalObserver?.Invoke(renewed.Meta);
                interval = options.RenewEvery(Ttl);
                var remaining = Remaining(started);
                if (remaining == TimeSpan.Zero)
                {
                    // The answer came after the deadline: whatever the session held may have been lost meanwhile.
                    lost.Lose($"no successful renewal of session {Id} for {options.LostAfter(Ttl).TotalSeconds:0.#} s");
                    return;
                }

                Interlocked.Exchange(ref lastRenewedAt, started);
                deadline.Change(remaining, Timeout.InfiniteTimeSpan);
                options.DeadlineObserver?.Invoke(remaining);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (ConsulNotFoundException)
            {
                // A server that just became leader answers from its state before it has applied its log (a restarted
                // server, a new leader): a renewal there can answer 404 for a session that exists. A consistent read
                // is refused until the log is applied, so only its "not found" is believed.
                if (await ConfirmGoneAsync().ConfigureAwait(false))
                {
                    lost.Lose($"session {Id} no longer exists (renewal answered 404)");
                    return;
                }

                interval = options.RenewEvery(Ttl) / 3;
            }
            catch (Exception e) when (e is ConsulException or OperationCanceledException)
            {
                // Try again sooner; the renewal deadline decides when it is too late.
                interval = options.RenewEvery(Ttl) / 3;
            }
        }
    }

    /// <summary>True when a consistent read confirms the session is gone; false when it exists or the read failed.</summary>
    private async Task<bool> ConfirmGoneAsync()
    {
        try
        {
            var info = await client.Sessions.InfoAsync(Id, QueryOptions.ConsistentRead, stop.Token).ConfigureAwait(false);
            return info.Value is null;
        }
        catch (Exception e) when (e is ConsulException or OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>Stops renewing and, when the session was created here, destroys it (which releases every lock it holds).</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref disposed, 1) == 1)
        {
            return;
        }

        lost.Close();
        await stop.CancelAsync().ConfigureAwait(false);
        await deadline.DisposeAsync().ConfigureAwait(false);
        try
        {
            await renewing.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Stopped.
        }

        if (owned)
        {
            try
            {
                using var timeout = new CancellationTokenSource(client.Options.RequestTimeout);
                await client.Sessions.DestroyAsync(Id, timeout.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is ConsulException or OperationCanceledException)
            {
                // It expires by its TTL anyway.
            }
        }

        stop.Dispose();
    }

    /// <inheritdoc />
    public override string ToString() => $"session {Id}{(IsLost ? " (lost: " + LostReason + ")" : "")}";
}
