namespace Dtask.Chaos.Faults;

/// <summary>A fault as it happened.</summary>
/// <param name="Kind">What it was.</param>
/// <param name="Target">The executor (<c>node-3</c>) or Consul server (<c>server-2</c>) it hit.</param>
/// <param name="Start">When it began.</param>
/// <param name="End">When the victim was started again or resumed; null if it never was.</param>
/// <param name="CutOffNodes">The executors cut off from Consul or stopped by it: the victim itself, or the executors that talk to the hit server.</param>
/// <param name="Detail">What the victim held at the time, or why another victim was chosen.</param>
/// <param name="ClockOffsetSeconds">For clock faults: the offset of the victim's clock during the fault.</param>
public sealed record FaultEvent(FaultKind Kind, string Target, DateTimeOffset Start, DateTimeOffset? End, IReadOnlyList<string> CutOffNodes, string Detail,
    double? ClockOffsetSeconds = null)
{
    /// <summary>
    /// For a fault that downs a Consul server: when the cluster was healthy again after it (every running server names the
    /// same leader and takes a write), as the run measured it from the servers themselves; null when not measured. A
    /// partitioned leader that rejoins with a higher term, or a restarted server, can keep the cluster from electing for
    /// a while after the fault itself is over.
    /// </summary>
    public DateTimeOffset? HealthyAt { get; init; }

    /// <summary>When the cluster was healthy again after this fault: <see cref="HealthyAt"/> when it was measured and later than <see cref="End"/>, else <see cref="End"/>.</summary>
    public DateTimeOffset? RecoveredAt => HealthyAt is { } healthy && (End is null || healthy > End) ? healthy : End;

    /// <summary>True when <paramref name="node"/> was cut off by this fault at some instant of [<paramref name="from"/>, <paramref name="to"/>].</summary>
    public bool CutsOff(string node, DateTimeOffset from, DateTimeOffset to) =>
        CutOffNodes.Contains(node) && Start <= to && (End ?? DateTimeOffset.MaxValue) >= from;

    /// <summary>True for faults that hit one executor (its process, its network, its answers).</summary>
    public bool HitsExecutor => Kind is FaultKind.ExecutorKill or FaultKind.ExecutorPause or FaultKind.HolderPartition or FaultKind.ExecutorIsolation
        or FaultKind.LinkFlap or FaultKind.LostClaimAnswer or FaultKind.LostFinishAnswer or FaultKind.TreePause;

    /// <summary>True for faults that take a Consul server away from the executors that talk to it (killed, stopped, hung, cut off from the others).</summary>
    public bool DownsServer => Kind is FaultKind.LeaderKill or FaultKind.FollowerRestart or FaultKind.AgentHang or FaultKind.AgentRestart or FaultKind.ConsulPartition;

    /// <summary>True for faults that move the victim's clock (<see cref="ClockOffsetSeconds"/> is the offset, or the peak of a drift).</summary>
    public bool MovesClock => Kind is FaultKind.ClockOffset or FaultKind.ClockJump or FaultKind.ClockDrift;
}
