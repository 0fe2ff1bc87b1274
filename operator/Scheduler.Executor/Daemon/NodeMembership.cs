using System.Text;
using Dtask.Consul;
using Dtask.Consul.Errors;
using Dtask.Consul.Kv;
using Dtask.Consul.Locking;
using Dtask.Consul.Sessions;
using Dtask.Core.Durations;
using Dtask.Core.State;
using Dtask.Executor.Claims;
using Dtask.Executor.Ledger;
using Serilog;

namespace Dtask.Executor.Daemon;

/// <summary>The node name is registered by another live executor.</summary>
public sealed class NodeNameTakenException(string message) : Exception(message);

/// <summary>
/// This executor's presence in Consul: its claim session (a <see cref="SessionRenewal"/> made with <see cref="ExecutorSessionOptions"/>, Behavior <c>release</c>, held
/// by every task lock it takes) and its registration at <c>nodes/&lt;node&gt;</c>, held by a second, small session with
/// Behavior <c>delete</c> so the key vanishes when the node dies. Both renew on their own timers.
/// </summary>
/// <remarks>
/// <para>Two sessions, because the two kinds of key must end differently: a dead node's task locks are released (the
/// run record stays, for the next claimer to mark <c>abandoned</c>), while its registration must disappear so that
/// ranking stops counting it. One session has one behavior.</para>
/// <para>When a session is lost (Consul unreachable for longer than the TTL, or the session invalidated), it is
/// created again with backoff once Consul answers, and the registration is written again (with the new claim
/// session's id). A node name held by another live session refuses the first registration
/// (<see cref="NodeNameTakenException"/>) once it is still held two session TTLs later (a killed predecessor's session
/// expires by then); later it is logged and retried.</para>
/// </remarks>
public sealed class NodeMembership(ConsulClient client, IFleetLedger ledger, KvLayout layout, ExecutorOptions options, ClockSkewGuard skew, TimeProvider time, ILogger logger,
    Action<TimeSpan>? leaseObserver = null)
    : IClaimSessions, IAsyncDisposable
{
    private static readonly TimeSpan MinBackoff = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(10);

    /// <summary>How long after the fresh stamp written for a node that joined the next one follows.</summary>
    public static readonly TimeSpan JoinFollowUp = TimeSpan.FromSeconds(1);
    private readonly DateTimeOffset startedAt = time.GetUtcNow();
    private SessionRenewal? claimSession;
    private SessionRenewal? registrationSession;
    private readonly List<Task> retiring = [];
    private readonly CancellationTokenSource leaving = new();
    private bool unreachableLogged;
    private bool takenLogged;
    private bool registered;

    /// <summary>Raised when the claim session is found lost, before a new one is created.</summary>
    public event Action? SessionLost;

    /// <summary>The claim session while it lives; null while it is lost and not yet created again.</summary>
    public SessionRenewal? Session => claimSession is { IsLost: false } live ? live : null;

    /// <inheritdoc/>
    public Dtask.Consul.Locking.ILedgerSession? ClaimSession => Session;

    /// <summary>The node key.</summary>
    public string NodeKey => layout.NodeKey(options.Node);

    /// <summary>Creates both sessions and registers the node; retries while Consul cannot be reached.</summary>
    /// <exception cref="NodeNameTakenException">Another live executor holds the node name.</exception>
    /// <exception cref="ConsulPermissionDeniedException">The token may not write sessions or keys.</exception>
    public async Task JoinAsync(CancellationToken cancellationToken)
    {
        var backoff = new Backoff(MinBackoff, MaxBackoff);
        long? takenSince = null;
        while (true)
        {
            try
            {
                await EnsureAsync(cancellationToken).ConfigureAwait(false);
                Reachable();
                return;
            }
            catch (Exception e) when (e is ConsulException and not ConsulPermissionDeniedException)
            {
                Unreachable(e);
                await Task.Delay(backoff.Next(), time, cancellationToken).ConfigureAwait(false);
            }
            catch (NodeNameTakenException e) when (takenSince is null || time.GetElapsedTime(takenSince.Value) < TakenWait)
            {
                // Most often this node's own previous process, killed: Consul expires its session up to two TTLs later.
                if (takenSince is null)
                {
                    takenSince = time.GetTimestamp();
                    logger.Warning("node {Node:l}: {Problem:l}; waiting up to {Wait:0} s for it to expire", options.Node, e.Message, TakenWait.TotalSeconds);
                }

                await Task.Delay(backoff.Next(), time, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>How long a start waits for a node name held by another session: two session TTLs (how late Consul may
    /// expire a dead process's session) and a little more.</summary>
    private TimeSpan TakenWait => (options.SessionTtl * 2) + TimeSpan.FromSeconds(5);

    /// <summary>Keeps both sessions and the registration alive until <paramref name="cancellationToken"/> fires.</summary>
    public async Task KeepAsync(CancellationToken cancellationToken)
    {
        var backoff = new Backoff(MinBackoff, MaxBackoff);
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                using var anyLost = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken,
                    claimSession?.Lost ?? CancellationToken.None, registrationSession?.Lost ?? CancellationToken.None);
                if (claimSession is { IsLost: false } && registrationSession is { IsLost: false })
                {
                    await Task.Delay(Timeout.InfiniteTimeSpan, time, anyLost.Token).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                // A session was lost: rebuild below.
            }
            catch (OperationCanceledException)
            {
                return;
            }

            try
            {
                await EnsureAsync(cancellationToken).ConfigureAwait(false);
                Reachable();
                backoff.Reset();
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is ConsulException or NodeNameTakenException)
            {
                if (e is NodeNameTakenException)
                {
                    if (!takenLogged)
                    {
                        logger.Error("node {Node:l}: {Problem:l}; retrying", options.Node, e.Message);
                        takenLogged = true;
                    }
                }
                else
                {
                    Unreachable(e);
                }

                try
                {
                    await Task.Delay(backoff.Next(), time, cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    private async Task EnsureAsync(CancellationToken cancellationToken)
    {
        var rewrite = false;
        if (claimSession is not { IsLost: false })
        {
            if (claimSession is { } old)
            {
                logger.Warning("session {Session:l} was lost ({Reason:l}); creating a new one", old.Id, old.LostReason);
                SessionLost?.Invoke();
                Retire(old);
                claimSession = null;
            }

            claimSession = await SessionRenewal.CreateAsync(client, new ExecutorSessionOptions
            {
                Name = $"dtask executor {options.Node}",
                Ttl = options.SessionTtl,
                Node = options.SessionNode,
                // Lost (and the runs under it stopped) early enough that the stop ends before Consul may free the locks;
                // renewed three times within that deadline.
                LostMargin = options.StopBudget,
                RenewInterval = options.RenewalDeadline / 3,
                RenewalObserver = skew.Observe,
                DeadlineObserver = leaseObserver,
            }, time, cancellationToken).ConfigureAwait(false);
            rewrite = true;
        }

        if (registrationSession is not { IsLost: false })
        {
            if (registrationSession is { } old)
            {
                await old.DisposeAsync().ConfigureAwait(false);
                registrationSession = null;
            }

            registrationSession = await SessionRenewal.CreateAsync(client, new ExecutorSessionOptions
            {
                Name = $"dtask executor {options.Node} (registration)",
                Ttl = options.SessionTtl,
                Node = options.SessionNode,
                LockDelay = TimeSpan.Zero,
                Behavior = SessionBehavior.Delete,
            }, time, cancellationToken).ConfigureAwait(false);
            rewrite = true;
        }

        if (rewrite || !registered)
        {
            registered = false;
            await RegisterAsync(cancellationToken).ConfigureAwait(false);
            registered = true;
        }
    }

    /// <summary>
    /// Refreshes the registration every <see cref="ClockSkewGuard.StampInterval"/>, and at once when the clock guard
    /// changes state or another node joins (and again <see cref="JoinFollowUp"/> after a join), with this clock's stamp and the guard's estimate, until <paramref name="cancellationToken"/> fires:
    /// the stamp is the other executors' reference for this clock (one write per node per interval).
    /// </summary>
    public async Task StampAsync(CancellationToken cancellationToken)
    {
        using var changed = new SemaphoreSlim(0, 1);
        void OnChanged()
        {
            if (changed.CurrentCount == 0)
            {
                try
                {
                    changed.Release();
                }
                catch (SemaphoreFullException)
                {
                    // Already signalled.
                }
            }
        }

        // A node that just joined may not be watching yet when the first fresh stamp lands, or may read it late: a second
        // one follows shortly after.
        var joined = 0;
        void OnJoined()
        {
            Volatile.Write(ref joined, 1);
            OnChanged();
        }

        var followUp = false;
        skew.Changed += OnChanged;
        skew.PeerJoined += OnJoined;
        if (skew.TakePeerJoined())
        {
            OnJoined(); // A node joined before this loop listened.
        }

        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                using (var interval = new CancellationTokenSource(followUp ? JoinFollowUp : ClockSkewGuard.StampInterval, time))
                using (var wait = CancellationTokenSource.CreateLinkedTokenSource(interval.Token, cancellationToken))
                {
                    try
                    {
                        await changed.WaitAsync(wait.Token).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                    {
                        // The interval is over: refresh.
                    }
                    catch (OperationCanceledException)
                    {
                        return;
                    }
                }

                followUp = Interlocked.Exchange(ref joined, 0) == 1;
                if (claimSession is not { IsLost: false } claim || registrationSession is not { IsLost: false } registration)
                {
                    continue; // KeepAsync registers again with a fresh stamp.
                }

                try
                {
                    var put = await ledger.RegisterNodeAsync(Record(claim.Id), registration.Id, cancellationToken).ConfigureAwait(false);
                    skew.Observe(put.Meta);
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    return;
                }
                catch (ConsulException e)
                {
                    logger.Debug("node {Node:l}: could not refresh the registration's clock stamp: {Problem:l}", options.Node, e.Message);
                }
            }
        }
        finally
        {
            skew.Changed -= OnChanged;
            skew.PeerJoined -= OnJoined;
        }
    }

    private NodeRecord Record(string session)
    {
        var current = skew.Current;
        return new NodeRecord
        {
            Node = options.Node,
            Labels = options.Labels,
            Version = options.Version,
            StartedAt = startedAt,
            Session = session,
            Clock = time.GetUtcNow(),
            Skew = current.Estimate is { } estimate ? Math.Round(estimate.TotalSeconds, 3) : null,
            State = current.Skewed ? NodeRecord.ClockSkewed : NodeRecord.Ready,
        };
    }

    private async Task RegisterAsync(CancellationToken cancellationToken)
    {
        var put = await ledger.RegisterNodeAsync(Record(claimSession!.Id), registrationSession!.Id, cancellationToken).ConfigureAwait(false);
        skew.Observe(put.Meta);
        if (!put.Registered)
        {
            var holder = put.Holder;
            throw new NodeNameTakenException(
                $"the node name '{options.Node}' is registered at '{NodeKey}' by another live executor (session {holder ?? "in lock-delay"}); " +
                "give this one another --node, or stop the other one (its key goes away at most two session TTLs after it dies)");
        }

        takenLogged = false;
        if (options.Labels.Count == 0)
        {
            logger.Information("node {Node:l} registered at {Key:l} (session {Session:l})", options.Node, NodeKey, claimSession.Id);
        }
        else
        {
            logger.Information("node {Node:l} registered at {Key:l} (session {Session:l}, labels {Labels:l})",
                options.Node, NodeKey, claimSession.Id, string.Join(',', options.Labels.Select(l => $"{l.Key}={l.Value}")));
        }
    }

    /// <summary>
    /// Destroys a lost claim session only once the runs under it have stopped: a session lost because its renewal
    /// deadline passed may still exist, and destroying it at once would free its locks while a child is in its
    /// termination grace. The stop began when the loss fired and takes at most <see cref="ExecutorOptions.StopBudget"/>.
    /// </summary>
    private void Retire(SessionRenewal old)
    {
        retiring.RemoveAll(t => t.IsCompleted);
        retiring.Add(DestroyLaterAsync(old));
    }

    private async Task DestroyLaterAsync(SessionRenewal old)
    {
        try
        {
            await Task.Delay(options.StopBudget, time, leaving.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Leaving: the runs were stopped before the node leaves.
        }

        await old.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>Removes the registration and destroys both sessions (which releases every lock they hold).</summary>
    public async Task LeaveAsync()
    {
        await leaving.CancelAsync().ConfigureAwait(false);
        foreach (var destroyed in retiring)
        {
            await destroyed.ConfigureAwait(false);
        }

        retiring.Clear();
        if (registrationSession is { } registration)
        {
            try
            {
                using var timeout = new CancellationTokenSource(client.Options.RequestTimeout);
                await ledger.RemoveNodeAsync(options.Node, timeout.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is ConsulException or OperationCanceledException)
            {
                // Destroying the session deletes it anyway (Behavior=delete).
            }

            await registration.DisposeAsync().ConfigureAwait(false);
            registrationSession = null;
        }

        if (claimSession is { } session)
        {
            await session.DisposeAsync().ConfigureAwait(false);
            logger.Information("session {Session:l} destroyed; node {Node:l} left", session.Id, options.Node);
            claimSession = null;
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync() => await LeaveAsync().ConfigureAwait(false);

    private void Unreachable(Exception e)
    {
        if (!unreachableLogged)
        {
            logger.Warning("Consul at {Address:l} cannot be used: {Problem:l}; no claims until it answers again, retrying with backoff", client.Options.Address, e.Message);
            unreachableLogged = true;
        }
    }

    private void Reachable()
    {
        if (unreachableLogged)
        {
            logger.Information("Consul at {Address:l} answers again", client.Options.Address);
            unreachableLogged = false;
        }
    }

}
