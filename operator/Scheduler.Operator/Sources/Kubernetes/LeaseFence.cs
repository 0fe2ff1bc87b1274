using Dtask.Consul;
using Dtask.Consul.Txn;
using Dtask.Operator.Reconciliation;
using k8s.LeaderElection;

namespace Dtask.Operator.Sources.Kubernetes;

/// <summary>
/// The fence of the Kubernetes source. Consul cannot check a Kubernetes Lease, so the leader stops writing before
/// the Lease can be taken over: a write is let through only while its deadline, (the last successful renewal, on this
/// process's monotonic clock, read before the renewal was sent) + the lease duration − <see cref="Margin"/>, is in
/// the future, and its Consul request is cancelled at <see cref="WriteTimeout"/> or at that deadline, whichever comes
/// first. Another replica waits a full lease duration after it saw the last renewal (which it cannot have seen before
/// it was sent), so with a margin of the write timeout (a write handed to Consul is applied within it, or not at all)
/// plus <see cref="ClockRateAllowance"/> of the lease duration (the two replicas' clocks running at different rates),
/// no write of this leader lands after another replica can lead. What it cannot cover: the other replica's clock
/// running faster or jumping forward by more than the allowance (the elector measures the lease duration on it), a
/// write Consul applies later than the write timeout, and this process pausing between the deadline check and the
/// request leaving it (its cancellation then races the send). The directory source has none of these limits: Consul
/// itself checks its lock.
/// </summary>
public sealed class LeaseFence : ILeadershipFence
{
    /// <summary>The share of the lease duration allowed for the replicas' clocks running at different rates.</summary>
    public const double ClockRateAllowance = 0.05;

    private readonly ConsulClient client;
    private readonly TimeProvider time;
    private long renewed;
    private int hasRenewal;

    /// <summary>Creates the fence of a Lease of <paramref name="leaseDuration"/> whose writes may take <paramref name="writeTimeout"/>.</summary>
    public LeaseFence(ConsulClient client, TimeProvider time, TimeSpan leaseDuration, TimeSpan writeTimeout)
    {
        this.client = client ?? throw new ArgumentNullException(nameof(client));
        this.time = time ?? throw new ArgumentNullException(nameof(time));
        var margin = MarginFor(writeTimeout, leaseDuration);
        if (writeTimeout <= TimeSpan.Zero || margin >= leaseDuration)
        {
            throw new ArgumentOutOfRangeException(nameof(writeTimeout), writeTimeout,
                $"the write timeout must be positive and, with {ClockRateAllowance:P0} of the lease duration, shorter than the lease duration ({leaseDuration})");
        }

        LeaseDuration = leaseDuration;
        WriteTimeout = writeTimeout;
        Margin = margin;
    }

    /// <summary>How long the Lease holds without renewal.</summary>
    public TimeSpan LeaseDuration { get; }

    /// <summary>How long one fenced Consul write may take before it is cancelled.</summary>
    public TimeSpan WriteTimeout { get; }

    /// <summary>How long before the Lease can be taken over the leader stops writing: <see cref="MarginFor"/>.</summary>
    public TimeSpan Margin { get; }

    /// <summary>The margin of a write timeout: the timeout plus <see cref="ClockRateAllowance"/> of the lease duration.</summary>
    public static TimeSpan MarginFor(TimeSpan writeTimeout, TimeSpan leaseDuration) =>
        writeTimeout + (leaseDuration * ClockRateAllowance);

    /// <summary>
    /// The write timeout the operator uses: the Consul client's request timeout, but at most a quarter of the lease
    /// duration (so the write window stays most of the lease).
    /// </summary>
    public static TimeSpan WriteTimeoutFor(TimeSpan consulRequestTimeout, TimeSpan leaseDuration) =>
        consulRequestTimeout < leaseDuration / 4 ? consulRequestTimeout : leaseDuration / 4;

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

        using var deadline = new CancellationTokenSource(remaining < WriteTimeout ? remaining : WriteTimeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        try
        {
            return (await client.Txn.ExecuteAsync(operations, TxnAtomicity.RequireAtomic, linked.Token).ConfigureAwait(false)).Value;
        }
        catch (OperationCanceledException e) when (deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new LeadershipLostException(
                $"a write did not finish within {WriteTimeout.TotalSeconds:0.#} s or before the Lease's write window ended (its outcome is unknown)", e);
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
