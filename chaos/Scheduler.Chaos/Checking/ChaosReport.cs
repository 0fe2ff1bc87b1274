using Dtask.Chaos.Faults;

namespace Dtask.Chaos.Checking;

/// <summary>A broken invariant.</summary>
/// <param name="Kind">Which evidence: <c>duplicate</c>, <c>overlap</c>, <c>fence-order</c>, <c>unexplained-slot</c>, <c>no-runs</c>, <c>record-contradicts-witness</c>,
/// <c>run-without-record</c>, <c>record-without-witness</c>, <c>running-without-child</c>, <c>stall</c>, <c>child-outlived-executor</c>, <c>early-fire</c>.</param>
/// <param name="Task">The task.</param>
/// <param name="Slot">The slot, when one is concerned.</param>
/// <param name="Detail">The evidence.</param>
/// <param name="Fault">The fault it follows, when it is tied to one (a stall after it heals, a child outliving a killed executor).</param>
public sealed record Violation(string Kind, string Task, long? Slot, string Detail, FaultKind? Fault = null)
{
    /// <summary>The invariant it breaks (<see cref="Invariants"/>).</summary>
    public string Invariant => Invariants.Of(Kind);
}

/// <summary>The figures of one fault kind: how often it was injected, and the slots due while it acted (from its start to two session TTLs after its end).</summary>
/// <param name="Fault">The fault kind, or <c>none</c> for the slots no fault's window covers.</param>
/// <param name="Injected">How many times it happened.</param>
/// <param name="SlotsDue">Slots due in its windows (a slot under two faults counts for both).</param>
/// <param name="Ran">Of those, slots with a witnessed run.</param>
/// <param name="Skipped">Recorded skipped.</param>
/// <param name="Missed">Recorded missed.</param>
/// <param name="Violations">Violations in its windows (or tied to it), per invariant; every invariant is listed.</param>
public sealed record FaultFigures(string Fault, int Injected, int SlotsDue, int Ran, int Skipped, int Missed, IReadOnlyDictionary<string, int> Violations);

/// <summary>
/// Two runs of one task whose witnessed intervals intersect while the earlier run's holder was cut off by a fault (killed,
/// paused, or its Consul server down): the lease-lock caveat. Not a violation when the later run's fence is newer, so a
/// fenced downstream system rejects the stale holder.
/// </summary>
/// <param name="Task">The task.</param>
/// <param name="Earlier">The stale holder's run: node, slot, fence.</param>
/// <param name="Later">The run that took over: node, slot, fence.</param>
/// <param name="Seconds">How long both children ran at once.</param>
/// <param name="Cause">The fault that cut the earlier holder off.</param>
public sealed record FencedOverlap(string Task, string Earlier, string Later, double Seconds, string Cause);

/// <summary>The counts of one task over the window.</summary>
/// <param name="Task">The task.</param>
/// <param name="PeriodSeconds">Its period.</param>
/// <param name="Slots">Slots in the window.</param>
/// <param name="Ran">Slots with at least one witnessed run.</param>
/// <param name="RanOnce">Slots with exactly one witnessed run.</param>
/// <param name="Skipped">Slots recorded skipped (a run still going, Forbid).</param>
/// <param name="Missed">Slots recorded missed.</param>
/// <param name="Lost">Slots whose run is recorded lost (the holder lost its lock and stopped its child).</param>
/// <param name="Abandoned">Slots whose run is recorded abandoned (the holder died; noticed by another executor).</param>
/// <param name="Unexplained">Slots with neither a witnessed run nor a record.</param>
/// <param name="Duplicates">Slots with two or more different witnessed runs.</param>
/// <param name="Overlaps">Overlapping run pairs between live holders (violations).</param>
/// <param name="FencedOverlaps">Overlapping run pairs with a cut-off holder and a newer fence.</param>
public sealed record TaskFigures(string Task, int PeriodSeconds, int Slots, int Ran, int RanOnce, int Skipped, int Missed, int Lost, int Abandoned,
    int Unexplained, int Duplicates, int Overlaps, int FencedOverlaps);

/// <summary>How quickly the fleet went on after a fault.</summary>
/// <param name="Fault">The fault's kind.</param>
/// <param name="Target">Its victim.</param>
/// <param name="At">When it began.</param>
/// <param name="Task">For an executor fault: a task whose run the victim held at that instant; null for the fleet-wide figure.</param>
/// <param name="Seconds">Executor faults: from the fault to the first witnessed start of that task (or, fleet-wide, of any task) on another node. Consul faults: the longest gap between two child starts (any task, any node) from 1 s before the fault to 20 s after its recovery. Null when there is nothing to measure.</param>
/// <param name="TakenBy">The node that ran it and the slot, or where the gap was.</param>
public sealed record FailoverFigure(FaultKind Fault, string Target, DateTimeOffset At, string? Task, double? Seconds, string? TakenBy);

/// <summary>A distribution in milliseconds.</summary>
/// <param name="Count">Samples.</param>
/// <param name="Median">The median.</param>
/// <param name="P99">The 99th percentile.</param>
/// <param name="Max">The maximum.</param>
public sealed record Distribution(int Count, double Median, double P99, double Max)
{
    /// <summary>The distribution of <paramref name="samples"/>.</summary>
    public static Distribution Of(IEnumerable<double> samples)
    {
        var sorted = samples.Order().ToArray();
        if (sorted.Length == 0)
        {
            return new Distribution(0, 0, 0, 0);
        }

        double At(double q) => sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(q * sorted.Length) - 1)];
        return new Distribution(sorted.Length, Math.Round(At(0.5), 1), Math.Round(At(0.99), 1), Math.Round(sorted[^1], 1));
    }
}

/// <summary>What the chaos run found.</summary>
/// <param name="Window">The slots judged.</param>
/// <param name="Faults">The faults as they happened.</param>
/// <param name="Tasks">Per task counts.</param>
/// <param name="Violations">Broken invariants (none for a pass).</param>
/// <param name="FencedOverlaps">Overlaps with a cut-off holder, fenced by a newer token (the stated caveat).</param>
/// <param name="NotRunReasons">Slots in the window that did not run, by recorded state and reason.</param>
/// <param name="Failovers">Failover times.</param>
/// <param name="FireDelayMs">Nominal slot time to witnessed child start, over the runs of the window.</param>
/// <param name="Notes">Things worth knowing that are not violations (unreadable witness lines…).</param>
/// <param name="InvariantViolations">Violations per invariant (<see cref="Invariants.All"/>, zeros included).</param>
/// <param name="ByFault">The figures per fault kind.</param>
/// <param name="Triggers">The manual trigger stream's figures; null when the run sent no stream.</param>
/// <param name="EarlyUnderClockLimit">Early starts on a node that had fewer than <see cref="InvariantChecker.RightClocksNeeded"/>
/// other executors on right clocks up and reachable: the skew guard's documented limit (two clocks), not violations.</param>
public sealed record ChaosReport(
    CheckWindow Window,
    IReadOnlyList<FaultEvent> Faults,
    IReadOnlyList<TaskFigures> Tasks,
    IReadOnlyList<Violation> Violations,
    IReadOnlyList<FencedOverlap> FencedOverlaps,
    IReadOnlyDictionary<string, int> NotRunReasons,
    IReadOnlyList<FailoverFigure> Failovers,
    Distribution FireDelayMs,
    IReadOnlyList<string> Notes,
    IReadOnlyDictionary<string, int> InvariantViolations,
    IReadOnlyList<FaultFigures> ByFault,
    TriggerFigures? Triggers = null,
    IReadOnlyList<string>? EarlyUnderClockLimit = null)
{
    /// <summary>True when no invariant is broken.</summary>
    public bool Passed => Violations.Count == 0;
}
