using Dtask.Core.Model;
using Dtask.Core.Scheduling;
using Dtask.Core.State;

namespace Dtask.Executor.Claims;

/// <summary>
/// A slot this executor has claimed: it holds the task's lock with its session, and the run record says
/// <c>running</c> with its run id. The claim is proof of ownership only while the lock is held (see <see cref="Consul.Locking.LockKeyWatch"/>).
/// </summary>
/// <param name="Task">The task.</param>
/// <param name="Slot">The slot id.</param>
/// <param name="RunId">The run's id.</param>
/// <param name="Node">The claiming node.</param>
/// <param name="SessionId">The session holding the lock.</param>
/// <param name="Fence">The fence: the run record's ModifyIndex written by the claim. It stays the same for every attempt.</param>
/// <param name="Record">The run record as last written by this executor.</param>
/// <param name="RecordIndex">The run record's ModifyIndex after that write: the CAS index of the next one.</param>
public sealed record SlotClaim(TaskId Task, long Slot, string RunId, string Node, string SessionId, FenceToken Fence, RunRecord Record, ulong RecordIndex)
{
    /// <summary>The task's schedule, when the claimer knows it: lets the finish trim the history without listing it
    /// (see <see cref="RunRecorder.FinishAsync"/>).</summary>
    public TaskSchedule? Schedule { get; init; }
}

/// <summary>A pending manual trigger, as stored at <c>control/&lt;ns&gt;/&lt;name&gt;/trigger/&lt;id&gt;</c>.</summary>
/// <param name="Id">The request's id (the key's last segment).</param>
/// <param name="Key">The key.</param>
/// <param name="CreateIndex">The key's CreateIndex, assigned by Consul: the trigger's order and the name of its history entry.</param>
public sealed record ManualTrigger(string Id, string Key, ulong CreateIndex)
{
    /// <summary>The CreateIndex as the run record stores it.</summary>
    public long Sequence => checked((long)CreateIndex);
}

/// <summary>What a claim attempt found.</summary>
public enum ClaimStatus
{
    /// <summary>This executor claimed the slot: fire it.</summary>
    Claimed,

    /// <summary>
    /// The run record already names this slot or a later one, or the slot has a history entry (recorded skipped or
    /// missed): someone claimed or recorded it. Do not fire.
    /// </summary>
    AlreadyClaimed,

    /// <summary>An earlier run still holds the lock with a live session: apply the concurrency policy.</summary>
    Busy,

    /// <summary>
    /// The lock is free but could not be taken: the lock-delay of a session that just ended is in force. The slot is
    /// still unclaimed; try again after the delay (within the slot's deadline).
    /// </summary>
    LockDelay,

    /// <summary>The run record changed at every try (other writers raced this claim each time), or it could not be marked abandoned. Do not fire.</summary>
    Contended,
}

/// <summary>The answer of <see cref="SlotClaimer.ClaimAsync"/>.</summary>
/// <param name="Status">What happened.</param>
/// <param name="Claim">The claim, when <see cref="ClaimStatus.Claimed"/>.</param>
/// <param name="Current">The run record as last read (the holder's, for <see cref="ClaimStatus.AlreadyClaimed"/> and <see cref="ClaimStatus.Busy"/>).</param>
/// <param name="Detail">A sentence for logs.</param>
public sealed record ClaimOutcome(ClaimStatus Status, SlotClaim? Claim, RunRecord? Current, string Detail)
{
    /// <summary>A run record found <c>running</c> whose session was gone, and marked <c>abandoned</c> on the way.</summary>
    public RunRecord? Abandoned { get; init; }

    /// <summary>
    /// The run record's ModifyIndex as read when deciding (0: absent), for <see cref="ClaimStatus.Busy"/> and
    /// <see cref="ClaimStatus.AlreadyClaimed"/>: a skip marker is written only while the record is still at it.
    /// </summary>
    public ulong CurrentIndex { get; init; }
}
