namespace Dtask.Chaos.Faults;

/// <summary>The faults the chaos run injects.</summary>
public enum FaultKind
{
    /// <summary>SIGKILL of an executor (its child is orphaned and runs on), started again after the hold.</summary>
    ExecutorKill,

    /// <summary>SIGSTOP of an executor past its session TTL (its child keeps running), then SIGCONT.</summary>
    ExecutorPause,

    /// <summary>SIGKILL of the Consul leader, started again after the hold (the others elect a new leader meanwhile).</summary>
    LeaderKill,

    /// <summary>SIGTERM of a Consul follower, started again after the hold (an orderly restart, as for an upgrade).</summary>
    FollowerRestart,
}
