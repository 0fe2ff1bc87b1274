using Dtask.Consul;
using Dtask.Consul.Txn;
using Dtask.Operator.Reconciliation;
using k8s.LeaderElection;

namespace Dtask.Operator.Sources.Kubernetes;

/// <summary>
/// The fence of the Kubernetes source. Consul cannot check a Kubernetes Lease, so the leader stops writing before
/// the Lease can be taken over: a write is let through only while (the last successful renewal, on this process's
/// monotonic clock, taken before the renewal was sent) + the lease duration − <see cref="Margin"/> is in the future,
/// and the Consul request gets a deadline at that instant. Another replica waits a full lease duration after it saw
/// the last renewal, so with a margin covering a Consul request that outlives the client's deadline and the
/// difference between the two replicas' clock rates, no write of this leader lands after another replica leads.
/// What it cannot cover: a replica whose clock runs faster (or jumps forward) by more than the allowance, and a write
/// already handed to Consul that Consul applies later than the request timeout.
/// </summary>
public sealed class LeaseFence : ILeadershipFence
{
    /// <summary>The share of the lease duration allowed for the replicas' clocks running at different rates.</summary>
    public const double ClockRateAllowance = 0.1;

    private readonly ConsulClient client;
    private readonly TimeProvider time;
    private long renewed;
    private int hasRenewal;

    /// <summary>Creates the fence of a Lease of <paramref name="leaseDuration"/>.</summary>
    public LeaseFence(ConsulClient client, TimeProvider time, TimeSpan leaseDuration, TimeSpan margin)
    {
        this.client = client ?? throw new ArgumentNullException(nameof(client));
        this.time = time ?? throw new ArgumentNullException(nameof(time));
        if (margin <= TimeSpan.Zero || margin >= leaseDuration)
        {
            throw new ArgumentOutOfRangeException(nameof(margin), margin, "the margin must be positive and shorter than the lease duration");
        }

        LeaseDuration = leaseDuration;
        Margin = margin;
    }

    /// <summary>How long the Lease holds without renewal.</summary>
    public TimeSpan LeaseDuration { get; }

    /// <summary>How long before the Lease can be taken over the leader stops writing.</summary>
    public TimeSpan Margin { get; }

    /// <summary>The margin for a Consul request timeout: the timeout plus <see cref="ClockRateAllowance"/> of the lease duration.</summary>
    public static TimeSpan MarginFor(TimeSpan consulRequestTimeout, TimeSpan leaseDuration) =>
        consulRequestTimeout + (leaseDuration * ClockRateAllowance);

    /// <inheritdoc />
    public int MaxOperations => ConsulTxn.MaxOperations;

    /// <summary>How long writes are still allowed (zero or less: not at all).</summary>
    public TimeSpan Remaining => Volatile.Read(ref hasRenewal) == 0
        ? TimeSpan.Zero
        : LeaseDuration - Margin - time.GetElapsedTime(Interlocked.Read(ref renewed));

    /// <summary>
    /// Records a successful renewal (or acquisition) of the Lease whose request was sent at <paramref name="sentAt"/>
    /// (a <see cref="TimeProvider.GetTimestamp"/> of the fence's clock).
    /// </summary>
    public void Renewed(long sentAt)
    {
        if (Volatile.Read(ref hasRenewal) == 0 || sentAt > Interlocked.Read(ref renewed))
        {
            Interlocked.Exchange(ref renewed, sentAt);
            Volatile.Write(ref hasRenewal, 1);
        }
    }

    /// <summary>Wraps the Lease lock given to the elector so that each renewal it makes is recorded here.</summary>
    public ILock Recording(ILock inner) => new RecordingLock(inner ?? throw new ArgumentNullException(nameof(inner)), this);

    /// <inheritdoc />
    public async Task<TxnResult> ExecuteAsync(IReadOnlyList<TxnOp> operations, CancellationToken cancellationToken)
    {
        var remaining = Remaining;
        if (remaining <= TimeSpan.Zero)
        {
            throw new LeadershipLostException(Volatile.Read(ref hasRenewal) == 0
                ? "the Lease has not been renewed yet"
                : $"the Lease was last renewed {time.GetElapsedTime(Interlocked.Read(ref renewed)).TotalSeconds:0.#} s ago; writes stop {Margin.TotalSeconds:0.#} s before it can expire");
        }

        using var deadline = new CancellationTokenSource(remaining, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        try
        {
            return (await client.Txn.ExecuteAsync(operations, TxnAtomicity.RequireAtomic, linked.Token).ConfigureAwait(false)).Value;
        }
        catch (OperationCanceledException e) when (deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new LeadershipLostException("the Lease's write window ended while a write was in flight (its outcome is unknown)", e);
        }
    }

    private sealed class RecordingLock(ILock inner, LeaseFence fence) : ILock
    {
        public string Identity => inner.Identity;

        public string Describe() => inner.Describe();

        public Task<LeaderElectionRecord> GetAsync(CancellationToken cancellationToken = default) => inner.GetAsync(cancellationToken);

        public async Task<bool> CreateAsync(LeaderElectionRecord record, CancellationToken cancellationToken = default)
        {
            var sent = fence.time.GetTimestamp();
            var created = await inner.CreateAsync(record, cancellationToken).ConfigureAwait(false);
            Record(created, record, sent);
            return created;
        }

        public async Task<bool> UpdateAsync(LeaderElectionRecord record, CancellationToken cancellationToken = default)
        {
            var sent = fence.time.GetTimestamp();
            var updated = await inner.UpdateAsync(record, cancellationToken).ConfigureAwait(false);
            Record(updated, record, sent);
            return updated;
        }

        private void Record(bool written, LeaderElectionRecord record, long sent)
        {
            if (written && record.HolderIdentity == inner.Identity)
            {
                fence.Renewed(sent);
            }
        }
    }
}
