using Dtask.Consul.Errors;
using Dtask.Consul.Locking;
using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Executor.Claims;

namespace Dtask.Executor.Ledger;

/// <summary>
/// Every read, write and transaction on task state — each task's run record, lock, history and control requests, and
/// (through <see cref="IFleetLedger"/>) the task specs and node registrations — behind one narrow interface, so the
/// executor is orchestration over it. <see cref="ConsulTaskLedger"/> keeps the state in Consul KV; the
/// semantics of each method are those of the Consul one (named in its documentation), which conformance tests hold any
/// other implementation to.
/// </summary>
public interface ITaskLedger : IFleetLedger
{
    /// <summary>The run record, read consistently (linearizable), with its modify index (see <see cref="RunStateStore.ReadRunAsync"/>).</summary>
    /// <exception cref="ConsulException">The ledger could not be read.</exception>
    Task<StoredRun> ReadRunAsync(TaskId task, CancellationToken cancellationToken = default);

    /// <summary>
    /// The run record, read consistently like <see cref="ReadRunAsync"/>, in one request with the other reads of this
    /// kind made at the same time (many tasks planning at once cost one transaction per 64 of them).
    /// </summary>
    /// <exception cref="ConsulException">The ledger could not be read.</exception>
    Task<StoredRun> ReadRunBatchedAsync(TaskId task, CancellationToken cancellationToken = default);

    /// <summary>
    /// The run record as any server has it (a stale read, no leader round): cheap, possibly behind, never ahead; null when
    /// absent. Enough to see that a slot was claimed (a claimed slot stays claimed), never to decide that it was not.
    /// </summary>
    /// <exception cref="ConsulException">The ledger could not be read.</exception>
    Task<RunRecord?> PeekRunAsync(TaskId task, CancellationToken cancellationToken = default);

    /// <summary>
    /// Waits, at most <paramref name="maxWait"/>, until the run record changes while it says <c>running</c>; returns at
    /// once when it is absent or not running (stale reads: the caller decides again with a consistent one).
    /// </summary>
    /// <exception cref="ConsulException">The ledger could not be read.</exception>
    Task WaitForRunChangeAsync(TaskId task, TimeSpan maxWait, CancellationToken cancellationToken = default);

    /// <summary>
    /// Whether <paramref name="slot"/> has a history entry (run or recorded); <paramref name="consistent"/>: a linearizable
    /// read, otherwise a stale one (enough to see an entry, never to decide there is none).
    /// </summary>
    /// <exception cref="ConsulException">The ledger could not be read.</exception>
    Task<bool> HasHistoryAsync(TaskId task, long slot, bool consistent, CancellationToken cancellationToken = default);

    /// <summary>The history entries that hold run records, newest first (see <see cref="RunStateStore.ReadHistoryAsync"/>).</summary>
    /// <exception cref="ConsulException">The ledger could not be read.</exception>
    Task<IReadOnlyList<RunRecord>> ReadHistoryAsync(TaskId task, CancellationToken cancellationToken = default);

    /// <summary>Tries to claim <paramref name="slot"/> of <paramref name="task"/> (see <see cref="SlotClaimer.ClaimAsync"/>).</summary>
    /// <exception cref="ConsulException">The ledger could not be read, or refused; <see cref="ClaimUnconfirmedException"/> when the claim's outcome is unknown.</exception>
    Task<ClaimOutcome> ClaimAsync(TaskId task, long slot, string node, string sessionId, string? runId = null, CancellationToken cancellationToken = default);

    /// <summary>Tries to claim the manual run of <paramref name="trigger"/> (see <see cref="SlotClaimer.ClaimManualAsync"/>).</summary>
    /// <exception cref="ConsulException">The ledger could not be read, or refused; <see cref="ClaimUnconfirmedException"/> when the claim's outcome is unknown.</exception>
    Task<ClaimOutcome> ClaimManualAsync(TaskId task, ManualTrigger trigger, string node, string sessionId, string runId, CancellationToken cancellationToken = default);

    /// <summary>
    /// Releases a claim whose answer was lost, recorded <c>missed</c> (<see cref="RunReasons.ClaimUnconfirmed"/>), when the
    /// stored record is that claim; null when it is not stored (see <see cref="SlotClaimer.ReleaseUnconfirmedAsync"/>).
    /// </summary>
    /// <exception cref="ConsulException">The ledger could not be read or written.</exception>
    Task<RunRecord?> ReleaseUnconfirmedAsync(TaskId task, long slot, string runId, string sessionId, CancellationToken cancellationToken = default);

    /// <summary>Records a retry of a claimed slot; null when the lock is no longer held (see <see cref="RunRecorder.StartAttemptAsync"/>).</summary>
    /// <exception cref="ConsulException">The write was refused for a reason retrying cannot fix.</exception>
    Task<SlotClaim?> StartAttemptAsync(SlotClaim claim, int attempt, CancellationToken lockLost, CancellationToken cancellationToken = default);

    /// <summary>Records a claimed run's end and releases its lock (see <see cref="RunRecorder.FinishAsync"/>).</summary>
    Task<FinishResult> FinishAsync(SlotClaim claim, RunRecord final, int historyLimit, CancellationToken lockLost, CancellationToken cancellationToken = default);

    /// <summary>Records <paramref name="slot"/> skipped while the run record is at <paramref name="runIndex"/> (see <see cref="SlotMarker.RecordSkippedAsync"/>).</summary>
    /// <exception cref="ConsulException">The ledger could not be read or written.</exception>
    Task<MarkStatus> RecordSkippedAsync(TaskId task, long slot, string node, string reason, ulong runIndex, CancellationToken cancellationToken = default);

    /// <summary>Records <paramref name="slot"/> missed when nothing handled it (see <see cref="SlotMarker.RecordMissedAsync"/>).</summary>
    /// <exception cref="ConsulException">The ledger could not be read or written.</exception>
    Task<MarkStatus> RecordMissedAsync(TaskId task, long slot, string node, string reason, int historyLimit, CancellationToken cancellationToken = default);

    /// <summary>Writes a history entry for <paramref name="record"/> unless one exists (see <see cref="SlotMarker.TryWriteHistoryAsync"/>).</summary>
    /// <exception cref="ConsulException">The ledger could not be written.</exception>
    Task<bool> TryWriteHistoryAsync(TaskId task, RunRecord record, CancellationToken cancellationToken = default);

    /// <summary>
    /// Writes <paramref name="request"/>, a manual trigger of <paramref name="task"/> (<see cref="ControlRequest.Id"/> names
    /// it), under its own key: never over another request, stop or trigger. Answers the trigger as stored (its CreateIndex,
    /// given by the store, orders it among the task's claims; 0 when an executor consumed it before it could be read
    /// back), or null when a request with that id exists already.
    /// </summary>
    /// <exception cref="ConsulException">The ledger could not be written.</exception>
    Task<ManualTrigger?> RequestTriggerAsync(TaskId task, ControlRequest request, CancellationToken cancellationToken = default);

    /// <summary>
    /// Writes <paramref name="request"/>, the stop request of run <see cref="ControlRequest.RunId"/>, unless one is there
    /// already (every run has its own request: nothing pending is overwritten). True when this call wrote it.
    /// </summary>
    /// <exception cref="ConsulException">The ledger could not be written.</exception>
    Task<bool> RequestStopAsync(TaskId task, ControlRequest request, CancellationToken cancellationToken = default);

    /// <summary>Whether a stop request of run <paramref name="runId"/> is there (a consistent read).</summary>
    /// <exception cref="ConsulException">The ledger could not be read.</exception>
    Task<bool> HasStopRequestAsync(TaskId task, string runId, CancellationToken cancellationToken = default);

    /// <summary>Removes the stop request of run <paramref name="runId"/>, if any.</summary>
    /// <exception cref="ConsulException">The ledger could not be written.</exception>
    Task ClearStopAsync(TaskId task, string runId, CancellationToken cancellationToken = default);

    /// <summary>
    /// Removes the stop request of run <paramref name="runId"/> once its holder acted on it: only while it is at
    /// <paramref name="modifyIndex"/> (a request written again meanwhile stays). False when it was not removed.
    /// </summary>
    /// <exception cref="ConsulException">The ledger could not be written.</exception>
    Task<bool> ConsumeStopAsync(TaskId task, string runId, ulong modifyIndex, CancellationToken cancellationToken = default);

    /// <summary>
    /// Drops a pending trigger in one transaction: removes its request (at the index it has now, so the drop fails when it
    /// is claimed meanwhile) and writes <paramref name="record"/> as its history entry (only when none exists). False when
    /// the trigger is gone (run or dropped) or the transaction lost.
    /// </summary>
    /// <exception cref="ConsulException">The ledger could not be read or written.</exception>
    Task<bool> DropTriggerAsync(TaskId task, ManualTrigger trigger, RunRecord record, CancellationToken cancellationToken = default);

    /// <summary>
    /// Watches the lock of <paramref name="task"/>, held by <paramref name="session"/>: lost when the lock is no longer the
    /// session's, or with the session. With <paramref name="startAfter"/>, the lock itself is looked at only after it (until
    /// then only the session's loss is seen).
    /// </summary>
    ILockWatch WatchLock(TaskId task, ILedgerSession session, TimeSpan startAfter = default);
}
