using Dtask.Consul;
using Dtask.Consul.Errors;
using Dtask.Consul.Sessions;

namespace Dtask.Executor.Claims;

/// <summary>How an <see cref="ExecutorSession"/> is created and kept.</summary>
public sealed record ExecutorSessionOptions
{
    /// <summary>The session's name, for people reading Consul (<c>dtask executor NODE</c>).</summary>
    public string Name { get; init; } = "dtask executor";

    /// <summary>The TTL (10 s to 24 h).</summary>
    public TimeSpan Ttl { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// After the session ends, its locks cannot be taken for this long. Small, so a dead node's task is taken over
    /// quickly; not zero, so a holder that merely missed a renewal has a moment to notice before another starts.
    /// </summary>
    public TimeSpan LockDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// What happens to the keys the session holds when it ends: <c>release</c> for task locks (the run record stays for
    /// the next claimer to judge), <c>delete</c> for a node's registration (it vanishes with the node).
    /// </summary>
    public SessionBehavior Behavior { get; init; } = SessionBehavior.Release;

    /// <summary>Sees the metadata of every successful renewal (the agent's <c>Date</c>, for the clock-skew guard).</summary>
    public Action<Consul.Http.ConsulResponseMeta>? RenewalObserver { get; init; }

    /// <summary>Between renewals; a third of the TTL when null.</summary>
    public TimeSpan? RenewInterval { get; init; }

    /// <summary>The session counts as lost when no renewal succeeded for the TTL minus this; a tenth of the TTL (at least 1 s) when null.</summary>
    public TimeSpan? LostMargin { get; init; }

    internal TimeSpan RenewEvery(TimeSpan ttl) => RenewInterval ?? ttl / 3;

    internal TimeSpan LostAfter(TimeSpan ttl)
    {
        var margin = LostMargin ?? (ttl / 10 > TimeSpan.FromSeconds(1) ? ttl / 10 : TimeSpan.FromSeconds(1));
        return ttl - margin > TimeSpan.Zero ? ttl - margin : ttl / 2;
    }
}

/// <summary>
/// The one Consul session of an executor, shared by all its tasks' locks: TTL-only (<c>NodeChecks: []</c>),
/// Behavior <c>release</c>, a small lock-delay. It renews itself every TTL/3 on its own <see cref="TimeProvider"/>
/// timer, and <see cref="Lost"/> fires when a renewal answers 404 (the session was destroyed or expired) or when no
/// renewal has succeeded for the TTL minus a margin (Consul may already have expired it). Every lock held with it is
/// then gone, and every child running under one must be stopped.
/// </summary>
/// <remarks>
/// Sessions prefer liveness over safety: Consul may invalidate a session whose holder is merely slow, and a paused or
/// partitioned holder learns of it only when it runs again. The fence token exists for that case. Disposing stops
/// renewing and destroys the session (releasing its locks).
/// </remarks>
public sealed class ExecutorSession : IAsyncDisposable
{
    private readonly ConsulClient client;
    private readonly ExecutorSessionOptions options;
    private readonly TimeProvider time;
    private readonly CancellationTokenSource lost = new();
    private readonly CancellationTokenSource stop = new();
    private readonly ITimer renewalDeadline;
    private readonly Task renewing;
    private readonly CancellationToken lostToken;
    private string? lostReason;
    private int disposed;

    private ExecutorSession(ConsulClient client, ExecutorSessionOptions options, TimeProvider time, string id, long createdAt)
    {
        this.client = client;
        this.options = options;
        this.time = time;
        Id = id;
        Ttl = options.Ttl;
        lostToken = lost.Token;
        var remaining = options.LostAfter(Ttl) - time.GetElapsedTime(createdAt);
        renewalDeadline = time.CreateTimer(_ => Lose($"no successful renewal of session {id} for {options.LostAfter(Ttl).TotalSeconds:0.#} s"),
            null, remaining > TimeSpan.Zero ? remaining : TimeSpan.Zero, Timeout.InfiniteTimeSpan);
        renewing = RenewLoopAsync();
    }

    /// <summary>The session id.</summary>
    public string Id { get; }

    /// <summary>The TTL in force (the server may raise it on renewal).</summary>
    public TimeSpan Ttl { get; private set; }

    /// <summary>Cancelled when the session is lost; see the class remarks.</summary>
    public CancellationToken Lost => lostToken;

    /// <summary>True once <see cref="Lost"/> fired.</summary>
    public bool IsLost => lostToken.IsCancellationRequested;

    /// <summary>Why the session was lost, or null while it lives.</summary>
    public string? LostReason => Volatile.Read(ref lostReason);

    /// <summary>How many renewals succeeded.</summary>
    public int Renewals { get; private set; }

    /// <summary>Creates the session and starts renewing it.</summary>
    /// <exception cref="ConsulException">Consul refused or could not be reached.</exception>
    public static async Task<ExecutorSession> CreateAsync(ConsulClient client, ExecutorSessionOptions? options = null, TimeProvider? time = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        options ??= new ExecutorSessionOptions();
        time ??= TimeProvider.System;
        var at = time.GetTimestamp();
        var request = new SessionRequest(options.Name, options.Ttl) { LockDelay = options.LockDelay, Behavior = options.Behavior };
        var created = await client.Sessions.CreateAsync(request, cancellationToken).ConfigureAwait(false);
        return new ExecutorSession(client, options, time, created.Value, at);
    }

    private async Task RenewLoopAsync()
    {
        var interval = options.RenewEvery(Ttl);
        while (!stop.IsCancellationRequested && !lost.IsCancellationRequested)
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

                Renewals++;
                options.RenewalObserver?.Invoke(renewed.Meta);
                interval = options.RenewEvery(Ttl);
                var remaining = options.LostAfter(Ttl) - time.GetElapsedTime(started);
                renewalDeadline.Change(remaining > TimeSpan.Zero ? remaining : TimeSpan.Zero, Timeout.InfiniteTimeSpan);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (ConsulNotFoundException)
            {
                Lose($"session {Id} no longer exists (renewal answered 404)");
                return;
            }
            catch (Exception e) when (e is ConsulException or OperationCanceledException)
            {
                // Try again sooner; the renewal deadline decides when it is too late.
                interval = options.RenewEvery(Ttl) / 3;
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

    /// <summary>Stops renewing and destroys the session, which releases every lock it holds.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref disposed, 1) == 1)
        {
            return;
        }

        await stop.CancelAsync().ConfigureAwait(false);
        await renewalDeadline.DisposeAsync().ConfigureAwait(false);
        try
        {
            await renewing.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Stopped.
        }

        try
        {
            using var timeout = new CancellationTokenSource(client.Options.RequestTimeout);
            await client.Sessions.DestroyAsync(Id, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is ConsulException or OperationCanceledException)
        {
            // It expires by its TTL anyway.
        }

        stop.Dispose();
        // `lost` stays undisposed: holders may still look at Lost after disposal.
    }

    /// <inheritdoc />
    public override string ToString() => $"session {Id}{(IsLost ? " (lost: " + LostReason + ")" : "")}";
}
