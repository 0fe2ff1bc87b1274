namespace Dtask.Chaos.Faults;

/// <summary>One fault of the plan.</summary>
/// <param name="At">When it should begin, from the start of the fault phase.</param>
/// <param name="Kind">What it is.</param>
/// <param name="Hold">How long until the victim is started again or resumed (for a lost answer: how long to wait for the transaction).</param>
/// <param name="PreferHolderOf">For executor faults: the task whose current lock holder is the preferred victim (so the fault hits a running child).</param>
/// <param name="MaxRunAge">With <paramref name="PreferHolderOf"/>: wait (up to a minute) until the holder's run is at most this old, so its child
/// outlives the takeover and the lease-lock caveat shows.</param>
/// <param name="Offset">For a clock jump: the jump; for a clock drift: the offset it drifts to (and back, at the same rate).</param>
public sealed record PlannedFault(TimeSpan At, FaultKind Kind, TimeSpan Hold, string? PreferHolderOf = null, TimeSpan? MaxRunAge = null, TimeSpan? Offset = null)
{
    /// <summary>When the victim comes back.</summary>
    public TimeSpan Until => At + Hold;

    /// <summary>The faults of one lane happen one after the other; lanes run side by side (at most one Consul server down at a time).</summary>
    public string Lane => Kind switch
    {
        FaultKind.LeaderKill or FaultKind.FollowerRestart or FaultKind.AgentHang or FaultKind.ConsulPartition or FaultKind.AgentRestart => "cluster",
        FaultKind.ClockJump or FaultKind.ClockOffset or FaultKind.ClockDrift => "clock",
        _ => "executor",
    };
}
