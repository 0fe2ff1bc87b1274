using Dtask.Core.Model;

namespace Dtask.Chaos.Workload;

/// <summary>One task of the chaos workload: an <c>every</c> period, how long its child works, and its concurrency policy.</summary>
/// <param name="Name">The task's name (namespace <see cref="ChaosWorkload.Namespace"/>).</param>
/// <param name="PeriodSeconds">Its <c>every</c> period in seconds: its slots are the multiples of it.</param>
/// <param name="Work">How long its child sleeps between its <c>start</c> and <c>end</c> witness lines.</param>
/// <param name="Policy">Forbid (a slot whose previous run still goes is skipped) or Replace (the running child is stopped).</param>
/// <param name="Purpose">What the task exercises, for the report.</param>
/// <param name="Placement">Which eligible node fires: any (the hash ranking) or the one that ran it least recently.</param>
/// <param name="RetryLimit">Retries of a failed run (<c>retries.limit</c>, backoff 1 s). A task with retries has a child that
/// fails (exit 1) when its pid is odd, so about half of its attempts fail and are retried on the same node.</param>
/// <param name="Triggered">True when the run's manual trigger stream (<c>dtask trigger</c>) picks this task.</param>
public sealed record ChaosTask(string Name, int PeriodSeconds, TimeSpan Work, ConcurrencyPolicy Policy, string Purpose, Placement Placement = Placement.Any,
    int RetryLimit = 0, bool Triggered = false)
{
    /// <summary>The wait before the first retry (doubled for each next one).</summary>
    public static readonly TimeSpan RetryBackoff = TimeSpan.FromSeconds(1);

    /// <summary>True when the child fails on an odd pid (a task with retries).</summary>
    public bool FailsHalf => RetryLimit > 0;

    /// <summary>True when the child usually outlives its period, so most slots meet a running child.</summary>
    public bool Overlaps => Work.TotalSeconds >= PeriodSeconds;
}
