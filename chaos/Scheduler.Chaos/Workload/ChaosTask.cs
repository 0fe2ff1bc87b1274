using Dtask.Core.Model;

namespace Dtask.Chaos.Workload;

/// <summary>One task of the chaos workload: an <c>every</c> period, how long its child works, and its concurrency policy.</summary>
/// <param name="Name">The task's name (namespace <see cref="ChaosWorkload.Namespace"/>).</param>
/// <param name="PeriodSeconds">Its <c>every</c> period in seconds: its slots are the multiples of it.</param>
/// <param name="Work">How long its child sleeps between its <c>start</c> and <c>end</c> witness lines.</param>
/// <param name="Policy">Forbid (a slot whose previous run still goes is skipped) or Replace (the running child is stopped).</param>
/// <param name="Purpose">What the task exercises, for the report.</param>
/// <param name="Placement">Which eligible node fires: any (the hash ranking) or the one that ran it least recently.</param>
public sealed record ChaosTask(string Name, int PeriodSeconds, TimeSpan Work, ConcurrencyPolicy Policy, string Purpose, Placement Placement = Placement.Any)
{
    /// <summary>True when the child usually outlives its period, so most slots meet a running child.</summary>
    public bool Overlaps => Work.TotalSeconds >= PeriodSeconds;
}
