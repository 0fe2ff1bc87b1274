using Dtask.Core.State;

namespace Dtask.Executor.Claims;

/// <summary>
/// The run records a ledger writes, built in one place: every ledger (Consul's, and the in-memory one of the tests)
/// writes the same records for the same step.
/// </summary>
public static class RunRecords
{
    /// <summary>The record of a fresh claim of <paramref name="slot"/> (attempt 1, running).</summary>
    public static RunRecord Claimed(long slot, string runId, string node, string sessionId, DateTimeOffset at) => new()
    {
        Slot = slot,
        RunId = runId,
        Node = node,
        Session = sessionId,
        State = RunState.Running,
        StartedAt = at,
        Attempt = 1,
    };

    /// <summary>The record of a manual run's claim: it keeps <paramref name="previousSlot"/>, the slot of the record it replaces.</summary>
    public static RunRecord ClaimedManual(long previousSlot, ManualTrigger trigger, string runId, string node, string sessionId, DateTimeOffset at) =>
        Claimed(previousSlot, runId, node, sessionId, at) with { Trigger = trigger.Id, TriggerIndex = trigger.Sequence };

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
