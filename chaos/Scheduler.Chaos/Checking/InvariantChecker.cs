using System.Globalization;
using Dtask.Chaos.Evidence;
using Dtask.Chaos.Faults;
using Dtask.Chaos.Workload;
using Dtask.Core.State;

namespace Dtask.Chaos.Checking;

/// <summary>
/// Judges a chaos run from its evidence: the witness log (what the children really did) and the KV records (what the
/// executors say they did). Pure: a function of its <see cref="CheckInput"/>.
/// </summary>
/// <remarks>
/// <para>The invariants, each a <see cref="Violation"/> when broken:</para>
/// <list type="bullet">
/// <item><b>duplicate</b>: two witnessed child starts of one (task, slot), anywhere in the run, whatever their run ids, unless
/// the later one is a retry (the same run on the same node after the earlier child ended).</item>
/// <item><b>overlap</b>: two witnessed runs of one task whose [start, end] intervals intersect, unless the earlier
/// holder was cut off by a fault during its run (killed, paused, or its Consul server down) and the later run has a
/// newer fence: that is the lease-lock caveat, reported apart as a <see cref="FencedOverlap"/>. A child that never wrote
/// its end line is taken to run until the evidence was collected.</item>
/// <item><b>fence-order</b>: fences not strictly increasing in the start order of a task's runs.</item>
/// <item><b>unexplained-slot</b>: a slot in the window with neither a witnessed run nor a record (skipped, missed, lost,
/// abandoned) in KV.</item>
/// <item><b>record-contradicts-witness</b>: a slot that ran but is recorded skipped or missed, or whose record names
/// another run id or another fence.</item>
/// <item><b>run-without-record</b>: a witnessed run in the window with no record of its slot.</item>
/// <item><b>record-without-witness</b>: a slot recorded as run to completion (succeeded, failed, timed out) that no child
/// witnessed; a run its executor stopped (<c>stopped: replaced</c>, <c>stopped: shutdown</c>) before the child's shell
/// wrote its first line is counted among the reasons instead.</item>
/// <item><b>no-runs</b>: a task that never ran in the window (the check would be empty).</item>
/// <item><b>running-without-child</b>: a record left <c>running</c> after the executors stopped whose child is over (or never
/// started), more than two TTLs (and <see cref="StallAllowance"/>) before the evidence was taken: by then the dead holder's
/// session has expired and the record should say how the run ended.</item>
/// <item><b>stall</b>: after a fault healed (and every Consul server fault overlapping the wait; a server fault heals when
/// the cluster is healthy again, <see cref="Faults.FaultEvent.RecoveredAt"/>), a task that neither started a child nor had
/// one alive within <see cref="StallBound"/>.</item>
/// <item><b>child-outlived-executor</b>: a child of a killed executor still alive more than the termination grace plus
/// <see cref="ChildExitAllowance"/> after the kill (by its end line or its disappearance from <c>/proc</c>).</item>
/// <item><b>early-fire</b>: a child that started more than <see cref="EarlyFireBound"/> before its slot instant by the
/// host's true clock (the witness's <c>date</c> runs without libfaketime: the child's own clock corrected for the injected
/// offset), or before it at all on a clock more than <see cref="ConvictedOffset"/> off, while at least
/// <see cref="RightClocksNeeded"/> other executors on right clocks were up and reachable. With fewer, the guard has two
/// clocks (its agent's, which shares its own, and one peer's): such a start is the documented limit, listed apart
/// (<see cref="ChaosReport.EarlyUnderClockLimit"/>), not counted.</item>
/// <item><b>claim-without-quorum</b>: a child of an executor whose Consul server was partitioned from the majority that
/// started more than <see cref="ClaimInFlight"/> into the partition.</item>
/// <item><b>majority-stalled</b>: during a server partition, from two TTLs (and <see cref="StallAllowance"/>) after the cut
/// to the heal, a task with no child on the majority side.</item>
/// <item><b>wrong-host</b>: a child whose witness log (its network namespace's) belongs to another executor than the one
/// it was told (<c>DTASK_NODE</c>) it runs for.</item>
/// <item><b>premature-marker</b>: a skipped or missed marker written, by its writer's clock corrected with the lowest
/// offset injected into that clock, before its slot was due: more than <see cref="MarkerTolerance"/> before on a clock no
/// fault moved, more than <see cref="EarlyFireBound"/> (as for a child) on one a fault moved; such a marker on a node with
/// fewer than <see cref="RightClocksNeeded"/> right clocks in reach, less than <see cref="ConvictedOffset"/> early, is
/// listed apart with the early starts (<see cref="ChaosReport.EarlyUnderClockLimit"/>).</item>
/// </list>
/// <para>Each kind counts against one of the <see cref="Invariants"/>.</para>
/// </remarks>
public static partial class InvariantChecker
{
    /// <summary>Beyond one period plus two TTLs, what a task may take to run again after a fault heals (a loaded machine's scheduling, a watch's re-delivery).</summary>
    public static readonly TimeSpan StallAllowance = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long after every fault has healed a task may go without a child: one period plus the session TTL, plus one more
    /// TTL (Consul invalidates a TTL session only within two TTLs, and a leader election restarts the count), plus
    /// <see cref="StallAllowance"/>.
    /// </summary>
    public static TimeSpan StallBound(int periodSeconds, TimeSpan ttl) => TimeSpan.FromSeconds(periodSeconds) + (ttl * 2) + StallAllowance;

    /// <summary>Beyond the termination grace, what a killed executor's watchdog may take to stop its children on a loaded machine.</summary>
    public static readonly TimeSpan ChildExitAllowance = TimeSpan.FromSeconds(5);

    /// <summary>Checks <paramref name="input"/>.</summary>
    public static ChaosReport Check(CheckInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var violations = new List<Violation>();
        var fenced = new List<FencedOverlap>();
        var reasons = new SortedDictionary<string, int>(StringComparer.Ordinal);
        var figures = new List<TaskFigures>();
        var notes = new List<string>();

        foreach (var task in input.Tasks)
        {
            var runs = input.Runs.Where(r => r.Task == task.Name).OrderBy(r => r.Start).ToList();
            // Manual runs hold the lock like any other (overlap, fence order), but their slot is the instant they were
            // claimed, not a scheduled slot: they are judged by their trigger (CheckTriggers), not by slot.
            var scheduled = runs.Where(r => !r.IsManual).ToList();
            var history = input.Kv.History.GetValueOrDefault(task.Name) ?? [];
            var bySlot = history.GroupBy(r => r.Slot).ToDictionary(g => g.Key, g => g.Last());
            var current = input.Kv.Current.GetValueOrDefault(task.Name);

            var duplicates = CheckDuplicates(task, scheduled, violations);
            var (overlaps, fencedCount) = CheckOverlaps(task.Name, runs, input, violations, fenced);
            CheckFenceOrder(task.Name, runs, violations);

            int slots = 0, ran = 0, once = 0, skipped = 0, missed = 0, lost = 0, abandoned = 0, unexplained = 0;
            foreach (var slot in input.Window.SlotsOf(task.PeriodSeconds))
            {
                slots++;
                var record = bySlot.GetValueOrDefault(slot) ?? (current is { } c && c.Slot == slot ? c : null);
                var witnessed = scheduled.Where(r => r.Slot == slot).ToList();
                if (witnessed.Count > 0)
                {
                    ran++;
                    once += witnessed.Count == 1 ? 1 : 0;
                    lost += record?.State == RunState.Lost ? 1 : 0;
                    abandoned += record?.State == RunState.Abandoned ? 1 : 0;
                    CheckRecordOfRun(task.Name, slot, witnessed, record, violations);
                    continue;
                }

                switch (record?.State)
                {
                    case RunState.Skipped:
                        skipped++;
                        Count(reasons, $"skipped: {record.Reason ?? "no reason"}");
                        break;
                    case RunState.Missed:
                        missed++;
                        Count(reasons, $"missed: {record.Reason ?? "no reason"}");
                        break;
                    case RunState.Lost:
                        lost++;
                        Count(reasons, $"lost before its child started: {record.Reason ?? "no reason"}");
                        break;
                    case RunState.Abandoned:
                        abandoned++;
                        Count(reasons, "abandoned before its child started");
                        break;
                    case RunState.Failed when record.Reason?.StartsWith("stopped: ", StringComparison.Ordinal) == true:
                        // Stopped by its executor (Replace, shutdown) so soon after the start that the child's shell had
                        // not yet run its first line: the record says so, and no child ran on past it.
                        Count(reasons, $"stopped before its child wrote a line: {record.Reason}");
                        break;
                    case null:
                        unexplained++;
                        violations.Add(new Violation("unexplained-slot", task.Name, slot,
                            $"no witnessed run and no record; faults around it: {FaultsAround(input.Faults, DateTimeOffset.FromUnixTimeSeconds(slot))}"));
                        break;
                    default:
                        violations.Add(new Violation("record-without-witness", task.Name, slot,
                            $"recorded {record.State} by {record.Node} (run {record.RunId}, fence {record.Fence}) but no child wrote a start line"));
                        break;
                }
            }

            if (ran == 0)
            {
                violations.Add(new Violation("no-runs", task.Name, null, $"no witnessed run among {slots} slots in the window"));
            }

            figures.Add(new TaskFigures(task.Name, task.PeriodSeconds, slots, ran, once, skipped, missed, lost, abandoned, unexplained, duplicates, overlaps, fencedCount));
        }

        var inWindow = input.Runs.Where(r => !r.IsManual && r.SlotTime >= input.Window.Start && r.SlotTime <= input.Window.End).ToList();
        var fireDelay = Distribution.Of(inWindow.Select(r => (r.Start - r.SlotTime).TotalMilliseconds));
        var unended = input.Runs.Count(r => r.End is null);
        if (unended > 0)
        {
            notes.Add($"{unended} witnessed run(s) have no end line (child killed with SIGKILL, or an orphan stopped at clean-up); they are taken to run until {input.EvidenceTakenAt:HH:mm:ss.fff}Z");
        }

        CheckRunningRecords(input, violations);
        CheckStalls(input, violations);
        CheckChildExits(input, violations);
        var underLimit = new List<string>();
        CheckEarlyFires(input, violations, underLimit);
        CheckHosts(input, violations, notes);
        CheckServerPartitions(input, violations);
        CheckMarkers(input, violations, underLimit);
        var triggers = CheckTriggers(input, violations);
        foreach (var skew in input.Runs.Where(r => r.ClockOffset is { } o && Math.Abs(o.TotalSeconds) >= 1).GroupBy(r => r.Node, StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            notes.Add($"{skew.Key}: {skew.Count()} child(ren) saw a clock off by {skew.Min(r => r.ClockOffset!.Value.TotalSeconds):+0.0;-0.0} s to {skew.Max(r => r.ClockOffset!.Value.TotalSeconds):+0.0;-0.0} s (the injected offset; judged by the true clock)");
        }

        var counts = Invariants.All.ToDictionary(i => i, i => violations.Count(v => v.Invariant == i), StringComparer.Ordinal);
        return new ChaosReport(input.Window, input.Faults, figures, violations, fenced, reasons, Failovers(input), fireDelay, notes, counts, ByFault(input, violations), triggers, underLimit);
    }

    /// <summary>The windows of a fault: from its start to two session TTLs after its end (a clock offset: the whole run).</summary>
    private static (DateTimeOffset From, DateTimeOffset To) WindowOf(FaultEvent fault, CheckInput input) =>
        (fault.Start, (fault.End ?? input.EvidenceTakenAt) + (input.Ttl * 2));

    private static List<FaultFigures> ByFault(CheckInput input, List<Violation> violations)
    {
        var rows = new List<FaultFigures>();
        var kinds = input.Faults.Select(f => f.Kind).Distinct().Order().Select(k => (FaultKind?)k).Append(null);
        foreach (var kind in kinds)
        {
            var windows = kind is { } k
                ? [.. input.Faults.Where(f => f.Kind == k).Select(f => WindowOf(f, input))]
                : new List<(DateTimeOffset From, DateTimeOffset To)>();
            var all = input.Faults.Select(f => WindowOf(f, input)).ToList();
            bool Covered(DateTimeOffset at) => kind is null ? !all.Any(w => w.From <= at && at <= w.To) : windows.Any(w => w.From <= at && at <= w.To);
            int due = 0, ran = 0, skipped = 0, missed = 0;
            foreach (var task in input.Tasks)
            {
                var history = input.Kv.History.GetValueOrDefault(task.Name) ?? [];
                var bySlot = history.GroupBy(r => r.Slot).ToDictionary(g => g.Key, g => g.Last());
                foreach (var slot in input.Window.SlotsOf(task.PeriodSeconds).Where(s => Covered(DateTimeOffset.FromUnixTimeSeconds(s))))
                {
                    due++;
                    if (input.Runs.Any(r => r.Task == task.Name && !r.IsManual && r.Slot == slot))
                    {
                        ran++;
                    }
                    else if (bySlot.GetValueOrDefault(slot)?.State is RunState.Skipped)
                    {
                        skipped++;
                    }
                    else if (bySlot.GetValueOrDefault(slot)?.State is RunState.Missed)
                    {
                        missed++;
                    }
                }
            }

            var mine = violations.Where(v => v.Fault is { } f ? f == kind : v.Slot is { } s && Covered(DateTimeOffset.FromUnixTimeSeconds(s))).ToList();
            rows.Add(new FaultFigures(kind?.ToString() ?? "none", kind is { } c ? input.Faults.Count(f => f.Kind == c) : 0, due, ran, skipped, missed,
                Invariants.All.ToDictionary(i => i, i => mine.Count(v => v.Invariant == i), StringComparer.Ordinal)));
        }

        return rows;
    }

    private static void CheckRunningRecords(CheckInput input, List<Violation> violations)
    {
        foreach (var task in input.Tasks)
        {
            if (input.Kv.Current.GetValueOrDefault(task.Name) is not { IsRunning: true } record)
            {
                continue;
            }

            var run = input.Runs.Where(r => r.Task == task.Name && r.RunId == record.RunId).MaxBy(r => r.Start);
            // A holder that died (its executor killed or cut off) leaves its record running until its session expires
            // and the next claimer marks it: within two TTLs of its child's end (or of the claim) that is no lie yet.
            var settled = input.EvidenceTakenAt - ((input.Ttl * 2) + StallAllowance);
            var lastSign = run?.End ?? record.StartedAt;
            // A Consul server fault after that (a leader election restarts every session's TTL) puts the expiry later.
            if (lastSign is { } sign && input.Faults.Where(f => f.DownsServer && f.End is { } e && e > sign).Select(f => f.End!.Value).DefaultIfEmpty(sign).Max() is var restarted
                && restarted > sign)
            {
                lastSign = restarted;
            }

            if ((run is null || run.End is not null) && (lastSign is null || lastSign < settled))
            {
                violations.Add(new Violation("running-without-child", task.Name, record.Slot,
                    $"left running by {record.Node} (run {record.RunId}) after the executors stopped, but {(run is null ? "no child of that run started" : $"its child ended at {run.End:HH:mm:ss.fff}")}"));
            }
        }
    }

    private static void CheckStalls(CheckInput input, List<Violation> violations)
    {
        var faults = input.Faults.Where(f => f.Kind != FaultKind.ClockOffset && f.End is not null).ToList();
        foreach (var fault in faults)
        {
            // Healthy from the end of this fault and of every fault that overlaps the time it is given to recover; for a
            // fault that downs a server, from when the cluster was healthy again (measured on the servers, not by dtask).
            var healthy = fault.RecoveredAt!.Value;
            foreach (var task in input.Tasks)
            {
                var bound = StallBound(task.PeriodSeconds, input.Ttl);
                var from = healthy;
                for (var changed = true; changed;)
                {
                    changed = false;
                    // Only a Consul server fault excuses a longer wait: every other fault hits one executor (its process,
                    // its network, its answers, its clock), and the other executors must carry the task meanwhile.
                    foreach (var other in faults.Where(o => o.DownsServer && o.Start <= from + bound && o.RecoveredAt!.Value > from))
                    {
                        from = other.RecoveredAt!.Value;
                        changed = true;
                    }
                }

                var deadline = from + bound;
                if (deadline > input.Window.End)
                {
                    continue;
                }

                var progressed = input.Runs.Any(r => r.Task == task.Name && r.Start <= deadline && r.EndOr(input.EvidenceTakenAt) >= from);
                if (!progressed)
                {
                    violations.Add(new Violation("stall", task.Name, null,
                        $"no child started or alive from {from:HH:mm:ss.fff}Z (all faults healed after {fault.Kind} of {fault.Target}) to {deadline:HH:mm:ss.fff}Z (one period + two TTLs + {StallAllowance.TotalSeconds:0} s)",
                        fault.Kind));
                }
            }
        }
    }

    private static void CheckChildExits(CheckInput input, List<Violation> violations)
    {
        var limit = input.Grace + ChildExitAllowance;
        foreach (var exit in (input.ChildExits ?? []).Where(e => e.Cause == FaultKind.ExecutorKill))
        {
            var run = input.Runs.FirstOrDefault(r => r.RunId == exit.RunId);
            DateTimeOffset? ended = run?.End is { } end && end >= exit.ExecutorDiedAt ? end : null;
            if (exit.GoneAt is { } gone && (ended is null || gone < ended))
            {
                ended = gone;
            }

            if (ended is null || ended.Value - exit.ExecutorDiedAt > limit)
            {
                violations.Add(new Violation("child-outlived-executor", run?.Task ?? "?", run?.Slot,
                    $"child {exit.Pid} (run {exit.RunId}) of {exit.Node}, SIGKILLed at {exit.ExecutorDiedAt:HH:mm:ss.fff}Z, " +
                    (ended is { } e ? $"lived {(e - exit.ExecutorDiedAt).TotalSeconds:0.0} s longer" : "was still alive at the end of the watch") +
                    $" (allowed: termination grace {input.Grace.TotalSeconds:0.#} s + {ChildExitAllowance.TotalSeconds:0} s)", FaultKind.ExecutorKill));
            }
        }
    }

    /// <summary>
    /// The end of a run's child: its end line, else when it was seen gone from <c>/proc</c> (killed with SIGKILL, as a
    /// watchdog does to a stopped child, before it could write one), else the time the evidence was taken.
    /// </summary>
    private static DateTimeOffset EndOf(WitnessRun run, CheckInput input)
    {
        if (run.End is { } end)
        {
            return end;
        }

        var gone = (input.ChildExits ?? []).Where(e => e.RunId == run.RunId && e.Pid == run.Pid && e.GoneAt is not null).Select(e => e.GoneAt!.Value).ToList();
        return gone.Count > 0 ? gone.Min() : input.EvidenceTakenAt;
    }

    private static void CheckHosts(CheckInput input, List<Violation> violations, List<string> notes)
    {
        // The host is the network namespace whose witness log holds the lines (named by the child itself): a child that
        // says (DTASK_NODE) it runs for another executor than the one whose namespace it ran in was told a lie.
        foreach (var run in input.Runs.Where(r => r.Host is { } h && !h.StartsWith("net:", StringComparison.Ordinal) && h != "host" && h != r.Node))
        {
            violations.Add(new Violation("wrong-host", run.Task, run.Slot, $"{Describe(run)} ran in {run.Host}'s network namespace but was told it runs on {run.Node}"));
        }

        var strangers = input.Runs.Where(r => r.Host is { } h && h.StartsWith("net:", StringComparison.Ordinal)).Select(r => r.Host!).Distinct(StringComparer.Ordinal).ToList();
        if (strangers.Count > 0)
        {
            notes.Add($"witness logs of unknown network namespaces: {string.Join(", ", strangers)}");
        }
    }

    /// <summary>How long after a Consul server is cut off a child of an executor on its side may still start (its claim committed just before).</summary>
    public static readonly TimeSpan ClaimInFlight = TimeSpan.FromSeconds(2);

    private static void CheckServerPartitions(CheckInput input, List<Violation> violations)
    {
        foreach (var partition in input.Faults.Where(f => f.Kind == FaultKind.ConsulPartition && f.End is not null))
        {
            // The minority has no quorum: no claim of an executor on its side can commit while it is cut off.
            foreach (var run in input.Runs.Where(r => partition.CutOffNodes.Contains(r.Node) && r.Start > partition.Start + ClaimInFlight && r.Start < partition.End!.Value))
            {
                violations.Add(new Violation("claim-without-quorum", run.Task, run.Slot,
                    $"{Describe(run)} started {(run.Start - partition.Start).TotalSeconds:0.0} s after {partition.Target} (its executor's server) was cut off from the majority", FaultKind.ConsulPartition));
            }

            // The majority keeps the quorum: once the cut-off executors' sessions have expired, the others run every task,
            // as long as one of them can (not hit by a fault of its own, its clock within the skew limit throughout) and no
            // other Consul server fault takes the quorum away meanwhile.
            var from = partition.Start + (input.Ttl * 2) + StallAllowance;
            var to = partition.End!.Value;
            var majority = input.Fleet.Where(n => !partition.CutOffNodes.Contains(n)).ToList();
            var able = majority
                .Where(n => !input.Faults.Any(f => f != partition && f.HitsExecutor && f.CutsOff(n, f.Kind == FaultKind.ExecutorKill ? from - StartUpWait : from, to))
                    && ClockWithinLimit(input.Faults, n, from, to)
                    && !OutvotedByWrongClocks(input, n, majority, from, to))
                .ToList();
            if (able.Count == 0 || input.Faults.Any(f => f != partition && f.DownsServer && f.Start <= to && (f.End ?? DateTimeOffset.MaxValue) >= from))
            {
                continue;
            }

            foreach (var task in input.Tasks.Where(t => to - from >= TimeSpan.FromSeconds(t.PeriodSeconds + 1)))
            {
                // A task whose last child ran on an executor that another fault then hit (paused, cut off, killed) before
                // it could give the lock back is held by that executor's session until Consul ends it, up to twice the
                // TTL after the fault began: its slots are skipped meanwhile, as they should be.
                if (input.Runs.Any(r => r.Task == task.Name && r.Start <= to && EndOf(r, input) >= from - (input.Ttl * 2)
                    && input.Faults.Any(f => f != partition && f.HitsExecutor && f.CutsOff(r.Node, r.Start, to) && f.Start + (input.Ttl * 2) + StallAllowance >= from)))
                {
                    continue;
                }

                if (!input.Runs.Any(r => r.Task == task.Name && !partition.CutOffNodes.Contains(r.Node) && r.Start <= partition.End!.Value && EndOf(r, input) >= from))
                {
                    violations.Add(new Violation("majority-stalled", task.Name, null,
                        $"no child of an executor on the majority side started or alive from {from:HH:mm:ss.fff}Z to {partition.End:HH:mm:ss.fff}Z while {partition.Target} was cut off", FaultKind.ConsulPartition));
                }
            }
        }
    }

    /// <summary>
    /// How long an executor started again may wait before it claims: until most of the other registered executors' clocks
    /// are timed, at most three stamp intervals (peers across a partition never are).
    /// </summary>
    public static readonly TimeSpan StartUpWait = TimeSpan.FromSeconds(30);

    /// <summary>
    /// True when, among the other executors <paramref name="node"/> can reach (<paramref name="reachable"/>), those whose
    /// clocks a fault moved beyond the limit in [<paramref name="from"/>, <paramref name="to"/>] outnumber the right ones
    /// and this node's agent together: they outvote its clock, and its skew guard rightly declines to claim (the
    /// documented limit: "if most executors share one wrong clock, they outvote the right one").
    /// </summary>
    private static bool OutvotedByWrongClocks(CheckInput input, string node, IReadOnlyList<string> reachable, DateTimeOffset from, DateTimeOffset to)
    {
        var others = reachable.Where(n => n != node).ToList();
        var wrong = others.Count(n => !ClockWithinLimit(input.Faults, n, from, to));
        return wrong > 1 + (others.Count - wrong);
    }

    /// <summary>The executors' skew limit: a node whose clock is moved further declines to claim, as it should.</summary>
    public static readonly TimeSpan SkewLimit = TimeSpan.FromSeconds(2);

    /// <summary>True when no clock fault put <paramref name="node"/>'s clock beyond <see cref="SkewLimit"/> at any instant of [<paramref name="from"/>, <paramref name="to"/>].</summary>
    private static bool ClockWithinLimit(IReadOnlyList<FaultEvent> faults, string node, DateTimeOffset from, DateTimeOffset to) =>
        !faults.Any(f => f.MovesClock && f.Target == node && Math.Abs(f.ClockOffsetSeconds ?? 0) > SkewLimit.TotalSeconds
            && f.Start <= to && (f.End ?? DateTimeOffset.MaxValue) >= from);

    /// <summary>
    /// How early a marker may be written by the true clock when its writer's clock was not moved: dtask claims up to 50 ms
    /// before the instant, a marker is no different. A writer whose clock a fault moved is held to
    /// <see cref="EarlyFireBound"/>, as a child is: its guard lets a clock within the limit decide, by that clock.
    /// </summary>
    public static readonly TimeSpan MarkerTolerance = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// How early a child may start by the true clock: the executor's skew guard lets a clock within the limit (2 s) claim,
    /// convicts a peer estimate only beyond the limit plus its one-second allowance for stamps read late, and its view of the
    /// peers is as fresh as the nodes watch delivers (a quarter of a second is allowed for that).
    /// </summary>
    public static readonly TimeSpan EarlyFireBound = SkewLimit + TimeSpan.FromSeconds(1) + TimeSpan.FromMilliseconds(250);

    /// <summary>A clock this far off (by the child's reading) must have been convicted: any early start on it is a violation.</summary>
    public static readonly TimeSpan ConvictedOffset = TimeSpan.FromSeconds(10);

    private static void CheckMarkers(CheckInput input, List<Violation> violations, List<string> underLimit)
    {
        // A skipped or missed marker says a due slot did not run: written before the slot was due it decides too early.
        // Its time is its writer's clock; corrected by the lowest offset that writer's clock can have had when it read that
        // time (the correction most in the marker's favour), it is the latest true time it can have been written at.
        var runFrom = input.Faults.Select(f => f.Start).Append(input.Window.Start).Min() - TimeSpan.FromMinutes(1);
        foreach (var (task, history) in input.Kv.History)
        {
            foreach (var record in history.Where(r => r.State is RunState.Skipped or RunState.Missed && r.FinishedAt is not null))
            {
                var latest = record.FinishedAt!.Value - LowestOffsetAt(input.Faults, record.Node, record.FinishedAt.Value, runFrom, input.EvidenceTakenAt);
                var slot = DateTimeOffset.FromUnixTimeSeconds(record.Slot);
                var moved = input.Faults.Any(f => f.MovesClock && f.Target == record.Node && (f.ClockOffsetSeconds ?? 0) != 0
                    && f.Start <= latest + TimeSpan.FromSeconds(5) && (f.End ?? DateTimeOffset.MaxValue) >= latest - TimeSpan.FromSeconds(5));
                if (latest < slot - (moved ? EarlyFireBound : MarkerTolerance))
                {
                    var detail = $"recorded {record.State} ({record.Reason}) by {record.Node} at {record.FinishedAt:HH:mm:ss.fff}Z by its clock, {(slot - latest).TotalSeconds:0.0} s before the slot was due by the true clock";

                    // On a moved clock with fewer than two other right clocks in reach, the guard's documented limit, as
                    // for an early start: listed apart. A clock gone far off (past ConvictedOffset) must have been caught.
                    var right = RightClocksAround(input, record.Node, latest);
                    if (moved && right.Count < RightClocksNeeded && slot - latest <= ConvictedOffset)
                    {
                        underLimit.Add($"{task}: marker {detail}; other executors on a right clock, up and reachable: {(right.Count == 0 ? "none" : string.Join(", ", right))}");
                        continue;
                    }

                    violations.Add(new Violation("premature-marker", task, record.Slot, detail));
                }
            }
        }
    }

    /// <summary>
    /// The lowest offset <paramref name="node"/>'s clock can have had when it read <paramref name="read"/>: an offset counts
    /// only when the true time it gives (<paramref name="read"/> minus it) lies inside the run, and inside the window of the
    /// clock fault that gave it (outside every jump and drift, for the node's base offset). So a marker written an hour
    /// ahead during a jump is judged by the jump's offset, not by another jump the other way. With no consistent offset,
    /// the lowest of the run.
    /// </summary>
    private static TimeSpan LowestOffsetAt(IReadOnlyList<FaultEvent> faults, string node, DateTimeOffset read, DateTimeOffset runFrom, DateTimeOffset runTo)
    {
        var moves = faults.Where(f => f.MovesClock && f.Target == node && f.ClockOffsetSeconds is not null).ToList();
        var baseOffset = moves.FirstOrDefault(f => f.Kind == FaultKind.ClockOffset)?.ClockOffsetSeconds ?? 0;
        var windows = moves.Where(f => f.Kind != FaultKind.ClockOffset).ToList();
        bool InRun(DateTimeOffset t) => t >= runFrom && t <= runTo;
        var candidates = new List<double>();
        var atBase = read - TimeSpan.FromSeconds(baseOffset);
        if (InRun(atBase) && !windows.Any(w => atBase >= w.Start && atBase <= (w.End ?? runTo)))
        {
            candidates.Add(baseOffset);
        }

        foreach (var w in windows)
        {
            var offset = w.ClockOffsetSeconds!.Value;
            // A jump holds its offset through its window; a drift moves from the base to its peak and back.
            var (low, high) = w.Kind == FaultKind.ClockDrift ? (Math.Min(baseOffset, offset), Math.Max(baseOffset, offset)) : (offset, offset);
            var end = w.End ?? runTo;
            // The true time read − o must lie in [start, end] and in the run: o in [read − end, read − start].
            var lowest = Math.Max(low, (read - end).TotalSeconds);
            var highest = Math.Min(high, (read - w.Start).TotalSeconds);
            if (lowest <= highest && InRun(read - TimeSpan.FromSeconds(lowest)))
            {
                candidates.Add(lowest);
            }
        }

        return candidates.Count > 0 ? TimeSpan.FromSeconds(candidates.Min()) : LowestOffset(faults, node);
    }

    /// <summary>The lowest offset <paramref name="node"/>'s clock had during the run (zero for a node whose clock was never moved).</summary>
    private static TimeSpan LowestOffset(IReadOnlyList<FaultEvent> faults, string node)
    {
        var moves = faults.Where(f => f.MovesClock && f.Target == node && f.ClockOffsetSeconds is not null).ToList();
        var start = moves.FirstOrDefault(f => f.Kind == FaultKind.ClockOffset)?.ClockOffsetSeconds ?? 0;
        var lowest = moves.Where(f => f.Kind != FaultKind.ClockOffset).Select(f => Math.Min(f.ClockOffsetSeconds!.Value, start)).Append(start).Min();
        return TimeSpan.FromSeconds(lowest);
    }

    /// <summary>
    /// The documented limit of the skew guard: a clock is judged against clocks that are not its own, and the node's agent
    /// shares its clock (the chaos run moves both together). With fewer than this many other executors on right clocks,
    /// up and reachable, the guard has one right witness against its own agent: two clocks, and it cannot tell which one is
    /// wrong (<c>docs/architecture.md</c>, "Clock skew").
    /// </summary>
    public const int RightClocksNeeded = 2;

    private static void CheckEarlyFires(CheckInput input, List<Violation> violations, List<string> underLimit)
    {
        foreach (var run in input.Runs.Where(r => !r.IsManual && (r.SlotTime - r.Start > EarlyFireBound
            || (r.Start < r.SlotTime && r.ClockOffset is { } offset && offset.Duration() > ConvictedOffset))))
        {
            var detail = $"{Describe(run)} started {(run.SlotTime - run.Start).TotalSeconds:0.000} s before its slot instant by the true clock" +
                (run.ClockOffset is { } o ? $" (its own clock read {o.TotalSeconds:+0.0;-0.0} s off)" : "");
            var right = RightClocksAround(input, run.Node, run.Start);
            if (right.Count < RightClocksNeeded)
            {
                underLimit.Add($"{run.Task}: {detail}; other executors on a right clock, up and reachable: {(right.Count == 0 ? "none" : string.Join(", ", right))}");
                continue;
            }

            violations.Add(new Violation("early-fire", run.Task, run.Slot, detail));
        }
    }

    /// <summary>
    /// The other executors whose clocks <paramref name="node"/>'s guard could time right around <paramref name="at"/>: not
    /// moved beyond the skew limit by a clock fault, and neither stopped nor cut off from Consul by another fault, in the
    /// stamp interval before it.
    /// </summary>
    private static List<string> RightClocksAround(CheckInput input, string node, DateTimeOffset at)
    {
        var from = at - input.Ttl;
        return [.. input.Fleet.Where(peer => peer != node
            && ClockWithinLimit(input.Faults, peer, from, at)
            && !input.Faults.Any(f => !f.MovesClock && f.CutsOff(peer, from, at)))];
    }

    private static int CheckDuplicates(ChaosTask task, List<WitnessRun> runs, List<Violation> violations)
    {
        // Every child start counts, whatever its run id: a later start of a slot is legitimate only as a retry of a task
        // that has retries, within its limit: a new child on the same host (by its witness log, not by what dtask told it),
        // after the previous child of the slot ended failing by itself (its own end line: a non-zero status, not stopped).
        var count = 0;
        foreach (var group in runs.GroupBy(r => r.Slot))
        {
            var ordered = group.OrderBy(r => r.Start).ToList();
            var retries = Enumerable.Range(1, ordered.Count - 1).All(i => IsRetry(ordered[i - 1], ordered[i]));
            if (ordered.Count > 1 && (!retries || ordered.Count > 1 + task.RetryLimit))
            {
                count++;
                violations.Add(new Violation("duplicate", task.Name, group.Key,
                    "started " + string.Join(" and ", ordered.Select(r => $"{r.RunId} (pid {r.Pid}) on {r.Node} (fence {r.Fence}, start {r.Start:HH:mm:ss.fff}{(r.End is null ? "" : $", ended {r.End:HH:mm:ss.fff} status {r.Status?.ToString(CultureInfo.InvariantCulture) ?? "?"}{(r.Stopped ? " stopped" : "")}")})"))
                    + (retries ? $"; more than 1 + {task.RetryLimit} retries" : "")));
            }
        }

        return count;
    }

    private static bool IsRetry(WitnessRun previous, WitnessRun next) =>
        (previous.Host ?? previous.Node) == (next.Host ?? next.Node) && previous.Node == next.Node && previous.RunId == next.RunId
        && previous.FailedByItself && previous.End is { } end && end <= next.Start;

    private static (int Overlaps, int Fenced) CheckOverlaps(string task, List<WitnessRun> runs, CheckInput input, List<Violation> violations, List<FencedOverlap> fenced)
    {
        int overlaps = 0, fencedCount = 0;
        for (var i = 0; i < runs.Count; i++)
        {
            var later = runs[i];
            for (var j = 0; j < i; j++)
            {
                var earlier = runs[j];
                var earlierEnd = EndOf(earlier, input);
                if (earlierEnd <= later.Start)
                {
                    continue;
                }

                var laterEnd = EndOf(later, input);
                var seconds = Math.Round(((earlierEnd < laterEnd ? earlierEnd : laterEnd) - later.Start).TotalSeconds, 3);
                var cause = input.Faults.FirstOrDefault(f => f.CutsOff(earlier.Node, earlier.Start, later.Start));
                var pair = $"{Describe(earlier)} until {earlierEnd:HH:mm:ss.fff}{(earlier.End is null ? " (no end line)" : "")} and {Describe(later)}";
                if (cause is not null && later.Fence > earlier.Fence)
                {
                    fencedCount++;
                    fenced.Add(new FencedOverlap(task, Describe(earlier), Describe(later), seconds,
                        $"{cause.Kind} of {cause.Target} at {cause.Start:HH:mm:ss.fff}Z"));
                }
                else
                {
                    overlaps++;
                    violations.Add(new Violation("overlap", task, later.Slot, cause is null
                        ? $"{pair} ran at once for {seconds} s, both holders live"
                        : $"{pair} ran at once for {seconds} s; the earlier holder was cut off ({cause.Kind} of {cause.Target}) but the later fence is not newer"));
                }
            }
        }

        return (overlaps, fencedCount);
    }

    private static void CheckFenceOrder(string task, List<WitnessRun> runs, List<Violation> violations)
    {
        for (var i = 1; i < runs.Count; i++)
        {
            if (runs[i].Fence <= runs[i - 1].Fence && !(runs[i].RunId == runs[i - 1].RunId && runs[i].Node == runs[i - 1].Node))
            {
                violations.Add(new Violation("fence-order", task, runs[i].Slot,
                    $"{Describe(runs[i])} started after {Describe(runs[i - 1])} with a fence that is not newer"));
            }
        }
    }

    private static void CheckRecordOfRun(string task, long slot, List<WitnessRun> witnessed, RunRecord? record, List<Violation> violations)
    {
        var run = witnessed[0];
        if (record is null)
        {
            violations.Add(new Violation("run-without-record", task, slot, $"{Describe(run)} ran but its slot has no record in KV"));
            return;
        }

        if (record.State is RunState.Skipped or RunState.Missed)
        {
            violations.Add(new Violation("record-contradicts-witness", task, slot,
                $"{Describe(run)} ran but the slot is recorded {record.State} ({record.Reason}) by {record.Node}"));
        }
        else if (witnessed.All(r => r.RunId != record.RunId))
        {
            violations.Add(new Violation("record-contradicts-witness", task, slot,
                $"{Describe(run)} ran but the record names run {record.RunId} on {record.Node}"));
        }
        else if (record.Attempt <= 1 && record.Fence != 0 && witnessed.First(r => r.RunId == record.RunId).Fence != record.Fence)
        {
            violations.Add(new Violation("record-contradicts-witness", task, slot,
                $"{Describe(run)} ran but the record says fence {record.Fence}"));
        }
        else
        {
            CheckOutcome(task, slot, witnessed.Where(r => r.RunId == record.RunId).ToList(), record, violations);
        }
    }

    /// <summary>
    /// A finished record against the children of its run: no more children than the attempts it counts, and the state and
    /// exit code it gives the last one are the ones that child's end line wrote.
    /// </summary>
    private static void CheckOutcome(string task, long? slot, List<WitnessRun> children, RunRecord record, List<Violation> violations)
    {
        if (children.Count == 0)
        {
            return;
        }

        var last = children.MaxBy(r => r.Start)!;
        if (children.Count > Math.Max(1, record.Attempt))
        {
            violations.Add(new Violation("record-contradicts-witness", task, slot,
                $"{children.Count} children of run {record.RunId} started, but the record counts {record.Attempt} attempt(s)"));
        }
        else if (record.State == RunState.Succeeded && last.End is not null && (last.Stopped || last.Status is { } failed && failed != 0))
        {
            violations.Add(new Violation("record-contradicts-witness", task, slot,
                $"recorded succeeded, but {Describe(last)} ended {(last.Stopped ? "stopped" : $"with status {last.Status?.ToString(CultureInfo.InvariantCulture) ?? "?"}")}"));
        }
        else if (record.State == RunState.Failed && record.ExitCode is { } code and >= 0 and < 128 && last.End is not null && !last.Stopped
            && last.Status is { } status && status != code)
        {
            violations.Add(new Violation("record-contradicts-witness", task, slot,
                $"recorded failed with exit code {code}, but {Describe(last)} ended with status {status}"));
        }
    }

    private static List<FailoverFigure> Failovers(CheckInput input)
    {
        var figures = new List<FailoverFigure>();
        foreach (var fault in input.Faults)
        {
            if (fault.HitsExecutor)
            {
                var held = input.Runs.Where(r => r.Node == fault.Target && r.Start <= fault.Start && r.EndOr(DateTimeOffset.MaxValue) > fault.Start)
                    .Select(r => r.Task).Distinct().ToList();
                foreach (var task in held)
                {
                    var next = input.Runs.Where(r => r.Task == task && r.Node != fault.Target && r.Start > fault.Start).MinBy(r => r.Start);
                    figures.Add(new FailoverFigure(fault.Kind, fault.Target, fault.Start, task, next is null ? null : Seconds(next.Start - fault.Start),
                        next is null ? null : $"{next.Node} slot {next.Slot.ToString(CultureInfo.InvariantCulture)}"));
                }

                var anyElsewhere = input.Runs.Where(r => r.Node != fault.Target && r.Start > fault.Start).MinBy(r => r.Start);
                figures.Add(new FailoverFigure(fault.Kind, fault.Target, fault.Start, null, anyElsewhere is null ? null : Seconds(anyElsewhere.Start - fault.Start),
                    anyElsewhere is null ? null : $"{anyElsewhere.Node} {anyElsewhere.Task} slot {anyElsewhere.Slot.ToString(CultureInfo.InvariantCulture)}"));
            }
            else
            {
                // A Consul fault: the longest time without any child start around it (the write outage as the fleet saw it).
                var starts = input.Runs.Select(r => r.Start)
                    .Where(t => t >= fault.Start - TimeSpan.FromSeconds(1) && t <= (fault.End ?? fault.Start) + TimeSpan.FromSeconds(20))
                    .Order().ToList();
                (DateTimeOffset From, DateTimeOffset To)? widest = null;
                for (var i = 1; i < starts.Count; i++)
                {
                    if (widest is null || starts[i] - starts[i - 1] > widest.Value.To - widest.Value.From)
                    {
                        widest = (starts[i - 1], starts[i]);
                    }
                }

                figures.Add(new FailoverFigure(fault.Kind, fault.Target, fault.Start, null, widest is { } w ? Seconds(w.To - w.From) : null,
                    widest is { } g ? $"longest gap in child starts: {g.From:HH:mm:ss.fff} to {g.To:HH:mm:ss.fff}" : null));
            }
        }

        return figures;
    }

    private static double Seconds(TimeSpan span) => Math.Round(span.TotalSeconds, 3);

    private static string FaultsAround(IReadOnlyList<FaultEvent> faults, DateTimeOffset at)
    {
        var near = faults.Where(f => f.Start <= at + TimeSpan.FromSeconds(2) && (f.End ?? DateTimeOffset.MaxValue) >= at - TimeSpan.FromSeconds(30))
            .Select(f => $"{f.Kind} of {f.Target} at {f.Start:HH:mm:ss}").ToList();
        return near.Count == 0 ? "none" : string.Join(", ", near);
    }

    private static string Describe(WitnessRun run) =>
        $"slot {run.Slot.ToString(CultureInfo.InvariantCulture)} on {run.Node} (fence {run.Fence.ToString(CultureInfo.InvariantCulture)}, start {run.Start:HH:mm:ss.fff})";

    private static void Count(SortedDictionary<string, int> counts, string key) => counts[key] = counts.TryGetValue(key, out var n) ? n + 1 : 1;
}
