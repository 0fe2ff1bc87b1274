using Dtask.Core.State;

namespace Dtask.Executor.Claims;

/// <summary>
/// The run records a ledger writes, built in one place: every ledger (Consul's, and the in-memory one of the tests)
/// writes the same records for the same step.
/// </summary>
public static class RunRecords
{
    /// <summary>
    /// The record of a fresh claim of <paramref name="slot"/> (attempt 1, running), replacing <paramref name="replaced"/>:
    /// its <see cref="RunRecord.PreviousSlot"/> is where the slots not yet looked at begin (<see cref="GapFrom"/>).
    /// </summary>
    public static RunRecord Claimed(long slot, string runId, string node, string sessionId, DateTimeOffset at, RunRecord? replaced = null) => new()
    {
        Slot = slot,
        RunId = runId,
        Node = node,
        Session = sessionId,
        State = RunState.Running,
        StartedAt = at,
        Attempt = 1,
        PreviousSlot = GapFrom(replaced),
        HistoryFrom = replaced?.HistoryFrom,
        HistorySchedule = replaced?.HistorySchedule,
    };

    /// <summary>
    /// The record of a manual run's claim: it keeps the slot of the record it replaces (<paramref name="replaced"/>; 0 when
    /// none), and that record's <see cref="RunRecord.PreviousSlot"/>: a manual run passes over no slot and looks at none.
    /// </summary>
    public static RunRecord ClaimedManual(RunRecord? replaced, ManualTrigger trigger, string runId, string node, string sessionId, DateTimeOffset at) =>
        Claimed(replaced?.Slot ?? 0, runId, node, sessionId, at) with { Trigger = trigger.Id, TriggerIndex = trigger.Sequence, PreviousSlot = replaced?.PreviousSlot };

    /// <summary>
    /// Where the slots a new record passes over begin, when it replaces <paramref name="replaced"/>: that record's own
    /// <see cref="RunRecord.PreviousSlot"/> when its claimer did not get to look at the slots before it (it died, or its
    /// record is a marker), else its slot; null when there was no record, or none with a slot (a manual run's before the
    /// task's first slot keeps slot 0).
    /// </summary>
    public static long? GapFrom(RunRecord? replaced) => (replaced?.PreviousSlot ?? replaced?.Slot) is { } from && from > 0 ? from : null;

    /// <summary>A slot recorded without a run (<see cref="RunState.Skipped"/> or <see cref="RunState.Missed"/>).</summary>
    public static RunRecord NotRun(long slot, string node, RunState state, string reason, DateTimeOffset at) => new()
    {
        Slot = slot,
        RunId = SlotClaimer.NewRunId(slot),
        Node = node,
        State = state,
        Reason = reason,
        StartedAt = at,
        FinishedAt = at,
        Attempt = 0,
    };

    /// <summary>The record of attempt <paramref name="attempt"/> of a claimed run.</summary>
    public static RunRecord NextAttempt(RunRecord claimed, int attempt, long fence, DateTimeOffset at) => claimed with
    {
        Attempt = attempt,
        StartedAt = at,
        Fence = fence,
        State = RunState.Running,
        ExitCode = null,
        Reason = null,
        FinishedAt = null,
    };

    /// <summary>A running record whose holder's session is gone, marked abandoned; <paramref name="index"/> is its fence when it has none.</summary>
    public static RunRecord Abandoned(RunRecord running, ulong index, DateTimeOffset at) => running with
    {
        State = RunState.Abandoned,
        FinishedAt = at,
        Reason = RunReasons.HolderSessionGone,
        Fence = running.Fence != 0 ? running.Fence : checked((long)index),
    };
}
