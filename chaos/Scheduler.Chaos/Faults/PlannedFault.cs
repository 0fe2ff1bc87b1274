namespace Dtask.Chaos.Faults;

/// <summary>One fault of a <see cref="FaultPlan"/>.</summary>
/// <param name="At">When it begins, from the start of the fault phase.</param>
/// <param name="Kind">What it is.</param>
/// <param name="Hold">How long until the victim is started again or resumed.</param>
/// <param name="PreferHolderOf">For executor faults: the task whose current lock holder is the preferred victim (so the fault hits a running child).</param>
/// <param name="MaxRunAge">With <paramref name="PreferHolderOf"/>: wait (up to a minute) until the holder's run is at most this old, so its child
/// outlives the takeover and the lease-lock caveat shows.</param>
public sealed record PlannedFault(TimeSpan At, FaultKind Kind, TimeSpan Hold, string? PreferHolderOf = null, TimeSpan? MaxRunAge = null)
{
    /// <summary>When the victim comes back.</summary>
    public TimeSpan Until => At + Hold;
}
