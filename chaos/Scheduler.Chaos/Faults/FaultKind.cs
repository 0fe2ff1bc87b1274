namespace Dtask.Chaos.Faults;

/// <summary>The faults the chaos run injects.</summary>
public enum FaultKind
{
    /// <summary>SIGKILL of an executor, bare (its watchdog must stop its children), started again after the hold.</summary>
    ExecutorKill,

    /// <summary>SIGSTOP of an executor past its session TTL (its child keeps running), then SIGCONT.</summary>
    ExecutorPause,

    /// <summary>SIGKILL of the Consul leader, started again after the hold (the others elect a new leader meanwhile).</summary>
    LeaderKill,

    /// <summary>SIGTERM of a Consul follower, started again after the hold (an orderly restart, as for an upgrade).</summary>
    FollowerRestart,

    /// <summary>The holder of a running task cut off from Consul (its namespace's link set down) for longer than the session TTL.</summary>
    HolderPartition,

    /// <summary>One executor cut off from everything by an <c>nft</c> drop rule inside its namespace (both ways, packets silently dropped).</summary>
    ExecutorIsolation,

    /// <summary>An executor's link going down and up every 1.5 s for the hold.</summary>
    LinkFlap,

    /// <summary>A claim transaction that reaches Consul and commits, whose answer is replaced by a connection reset.</summary>
    LostClaimAnswer,

    /// <summary>A finish transaction (history record, lock release) that commits, whose answer is replaced by a connection reset.</summary>
    LostFinishAnswer,

    /// <summary>SIGSTOP of the Consul server some executors talk to, past their HTTP timeout, then SIGCONT.</summary>
    AgentHang,

    /// <summary>An executor (and its agent) on a clock off by a fixed offset for the whole run (libfaketime).</summary>
    ClockOffset,

    /// <summary>An executor's clock (and its agent's) jumping by an hour while it runs, and back after the hold.</summary>
    ClockJump,

    /// <summary>One Consul server (the leader or a follower) cut off from the other two by <c>nft</c> drop rules between their addresses, then healed.</summary>
    ConsulPartition,

    /// <summary>The Consul server some executors talk to (their agent; the leader or not) stopped with SIGTERM and started again with its data directory kept.</summary>
    AgentRestart,

    /// <summary>An executor's clock (and its agent's) drifting away at a steady rate and back, through its libfaketime offset file.</summary>
    ClockDrift,

    /// <summary>SIGSTOP of an executor and of its running children together (its watchdog, in a session of its own, keeps running) past the TTL, then SIGCONT.</summary>
    TreePause,
}
