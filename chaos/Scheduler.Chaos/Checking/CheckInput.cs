using Dtask.Chaos.Evidence;
using Dtask.Chaos.Faults;
using Dtask.Chaos.Workload;

namespace Dtask.Chaos.Checking;

/// <summary>The slots judged: every slot whose nominal time is in [<paramref name="Start"/>, <paramref name="End"/>].</summary>
/// <param name="Start">The first instant (after the executors have seen the tasks).</param>
/// <param name="End">The last instant (before the executors are stopped, leaving time for the last slots to be recorded).</param>
public sealed record CheckWindow(DateTimeOffset Start, DateTimeOffset End)
{
    /// <summary>The slots of a task with period <paramref name="periodSeconds"/> in the window.</summary>
    public IEnumerable<long> SlotsOf(int periodSeconds)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(periodSeconds, 1);
        var first = (Start.ToUnixTimeSeconds() + periodSeconds - 1) / periodSeconds * periodSeconds;
        for (var slot = first; slot <= End.ToUnixTimeSeconds(); slot += periodSeconds)
        {
            yield return slot;
        }
    }
}

/// <summary>Everything the <see cref="InvariantChecker"/> judges.</summary>
/// <param name="Tasks">The workload.</param>
/// <param name="Window">The slots judged.</param>
/// <param name="Runs">The witnessed runs (the whole run, also outside the window).</param>
/// <param name="Kv">The records in KV.</param>
/// <param name="Faults">The faults as they happened.</param>
/// <param name="EvidenceTakenAt">When the evidence was collected: the end of a run whose child never wrote its end line.</param>
/// <param name="ChildExits">The children of killed executors and when they were seen gone.</param>
/// <param name="SessionTtl">The executors' session TTL (the stall bound: <see cref="InvariantChecker.StallBound"/>).</param>
/// <param name="TerminationGrace">Between SIGTERM and SIGKILL of a child (a child may outlive its executor by this, plus <see cref="InvariantChecker.ChildExitAllowance"/>).</param>
/// <param name="Triggers">The manual trigger requests the run sent; null when it sent none (manual runs are then not judged).</param>
/// <param name="Executors">Every executor of the fleet by name (the peers whose clocks a node's skew guard can time); when null, the nodes the evidence names.</param>
public sealed record CheckInput(
    IReadOnlyList<ChaosTask> Tasks,
    CheckWindow Window,
    IReadOnlyList<WitnessRun> Runs,
    KvEvidence Kv,
    IReadOnlyList<FaultEvent> Faults,
    DateTimeOffset EvidenceTakenAt,
    IReadOnlyList<ChildExit>? ChildExits = null,
    TimeSpan? SessionTtl = null,
    TimeSpan? TerminationGrace = null,
    IReadOnlyList<SubmittedTrigger>? Triggers = null,
    IReadOnlyList<string>? Executors = null)
{
    /// <summary>The session TTL (10 s when not given).</summary>
    public TimeSpan Ttl => SessionTtl ?? TimeSpan.FromSeconds(10);

    /// <summary>The executors: <see cref="Executors"/>, or every node the witness, the records and the faults name.</summary>
    public IReadOnlyList<string> Fleet => Executors ?? [.. Runs.Select(r => r.Node)
        .Concat(Kv.History.Values.SelectMany(h => h.Select(r => r.Node)))
        .Concat(Faults.Where(f => f.HitsExecutor || f.MovesClock).Select(f => f.Target))
        .Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)];

    /// <summary>The termination grace (1 s when not given).</summary>
    public TimeSpan Grace => TerminationGrace ?? TimeSpan.FromSeconds(1);
}
