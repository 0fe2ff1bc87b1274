namespace Dtask.Core.Model;

/// <summary>What happens to a slot whose previous run still holds the task's lock.</summary>
public enum ConcurrencyPolicy
{
    /// <summary>The new slot is skipped and recorded with reason <c>still-running</c> (the default).</summary>
    Forbid,

    /// <summary>The running child is stopped first, then the new slot runs.</summary>
    Replace,
}

/// <summary>What happens to slots that nobody could fire in time (all executors down, Consul unreachable).</summary>
public enum MissedRunPolicy
{
    /// <summary>Missed slots are recorded as <c>missed</c> and not run.</summary>
    Skip,

    /// <summary>The most recent missed slot runs once (if still inside <c>startingDeadline</c>); older ones are recorded as missed.</summary>
    RunOnce,
}

/// <summary>Which eligible node fires a slot.</summary>
public enum Placement
{
    /// <summary>Any eligible node; ranked by a rendezvous hash of (task, slot) so the load spreads.</summary>
    Any,

    /// <summary>The eligible node that ran this task least recently (every node takes a turn).</summary>
    RoundRobin,
}
