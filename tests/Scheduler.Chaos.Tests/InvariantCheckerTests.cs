using Dtask.Chaos.Checking;
using Dtask.Chaos.Evidence;
using Dtask.Chaos.Faults;
using Dtask.Chaos.Workload;
using Dtask.Core.Model;
using Dtask.Core.State;

namespace Dtask.Chaos.Tests;

/// <summary>The checker on hand-made evidence: one task every 2 s, slots 1800000000 to 1800000010.</summary>
public sealed class InvariantCheckerTests
{
    private const long T0 = 1800000000;
    private static readonly ChaosTask Task2s = new("t", 2, TimeSpan.FromMilliseconds(500), ConcurrencyPolicy.Forbid, "test");
    private static readonly CheckWindow Window = new(At(T0), At(T0 + 10));

    /// <summary>A clean run: slots 0, 4, 6, 8, 10 ran one after the other; slot 2 was skipped.</summary>
    private static Evidence Clean()
    {
        var runs = new List<WitnessRun>();
        var history = new List<RunRecord>();
        long fence = 100;
        foreach (var offset in new long[] { 0, 4, 6, 8, 10 })
        {
            fence += 10;
            var run = new WitnessRun("t", T0 + offset, "node-1", fence, $"r{offset}", 1000 + (int)offset, At(T0 + offset, 50), At(T0 + offset, 550), false);
            runs.Add(run);
            history.Add(Record(run.Slot, run.RunId, run.Node, RunState.Succeeded, fence));
        }

        history.Add(Record(T0 + 2, "m2", "node-2", RunState.Skipped, 0, "still-running"));
        return new Evidence(runs, history, []);
    }

    public static TheoryData<string, Func<Evidence, Evidence>, string?> Cases => new()
    {
        { "clean run, one slot skipped with a reason", e => e, null },
        { "a second run of one slot on another node", e => e with { Runs = [.. e.Runs, Run(T0 + 4, "node-2", 999, "dup", 60, 560)] }, "duplicate" },
        { "two live holders at once", e => e with { Runs = [.. Without(e.Runs, T0 + 6), Run(T0 + 6, "node-2", 130, "r6", 50, 2500)] }, "overlap" },
        {
            "a killed holder's orphan outlives the takeover, newer fence",
            e => e with { Runs = [.. Without(e.Runs, T0 + 6), Run(T0 + 6, "node-2", 130, "r6", 50, 2500)], Faults = [Kill("node-2", T0 + 6, 200)] },
            null
        },
        {
            "a killed holder's orphan outlives the takeover, fence not newer",
            e => e with { Runs = [.. Without(e.Runs, T0 + 6), Run(T0 + 6, "node-2", 500, "r6", 50, 2500)], Faults = [Kill("node-2", T0 + 6, 200)] },
            "overlap"
        },
        { "a slot with no run and no record", e => e with { History = [.. e.History.Where(r => r.Slot != T0 + 2)] }, "unexplained-slot" },
        {
            "a slot that ran but is recorded missed",
            e => e with { History = [.. e.History.Where(r => r.Slot != T0 + 8), Record(T0 + 8, "m8", "node-3", RunState.Missed, 0, "not-claimed-before-deadline")] },
            "record-contradicts-witness"
        },
        { "a run with no record", e => e with { History = [.. e.History.Where(r => r.Slot != T0 + 8)] }, "run-without-record" },
        {
            "a completed record no child witnessed",
            e => e with { History = [.. e.History.Where(r => r.Slot != T0 + 2), Record(T0 + 2, "x2", "node-2", RunState.Succeeded, 105)] },
            "record-without-witness"
        },
        {
            "a run stopped by Replace before its child wrote a line",
            e => e with { History = [.. e.History.Where(r => r.Slot != T0 + 2), Record(T0 + 2, "x2", "node-2", RunState.Failed, 105, "stopped: replaced")] },
            null
        },
        { "fences going backwards", e => e with { Runs = [.. Without(e.Runs, T0 + 8), Run(T0 + 8, "node-1", 111, "r8", 50, 550)] }, "fence-order" },
        { "every child in its own executor's namespace", e => e with { Runs = [.. e.Runs.Select(r => r with { Host = r.Node })] }, null },
        {
            "a child told it runs on node-1 that ran in node-2's namespace",
            e => e with { Runs = [.. e.Runs.Select(r => r with { Host = r.Slot == T0 + 6 ? "node-2" : r.Node })] },
            "wrong-host"
        },
        {
            "a child of an executor whose Consul server was cut off, started 3 s into the partition",
            e => e with { Faults = [ServerPartition(["node-1"], T0 + 3, T0 + 9)] },
            "claim-without-quorum"
        },
        {
            "a server without executors cut off while the majority's executors run on",
            e => e with { Faults = [ServerPartition(["node-9"], T0 + 3, T0 + 9)] },
            null
        },
        {
            "no child on the majority side once the cut-off sessions expired",
            e => e with
            {
                Runs = [.. e.Runs.Where(r => r.Slot < T0 + 6)],
                History = [.. e.History.Where(r => r.Slot < T0 + 6), .. new long[] { 6, 8, 10 }.Select(o => Record(T0 + o, $"m{o}", "node-2", RunState.Missed, 0, "not-claimed-before-deadline"))],
                Faults = [ServerPartition(["node-9"], T0 - 20, T0 + 10)],
            },
            "majority-stalled"
        },
        {
            "no child on the majority side while its only executor was paused",
            e => e with
            {
                Runs = [.. e.Runs.Where(r => r.Slot < T0 + 6)],
                History = [.. e.History.Where(r => r.Slot < T0 + 6), .. new long[] { 6, 8, 10 }.Select(o => Record(T0 + o, $"m{o}", "node-2", RunState.Missed, 0, "not-claimed-before-deadline"))],
                Faults = [ServerPartition(["node-9"], T0 - 20, T0 + 10), new FaultEvent(FaultKind.TreePause, "node-1", At(T0 + 5), At(T0 + 12), ["node-1"], "test")],
            },
            null
        },
        {
            "no child on the majority side while the executor of the task's last child was paused before it gave the lock back",
            e => LastChildOnAPausedExecutor(e, At(T0 + 4, 600), RunState.Skipped, "still-running"),
            null
        },
        {
            "the same with the executor paused long before the partition: its session had ended",
            e => LastChildOnAPausedExecutor(e, At(T0 - 30), RunState.Missed, "not-claimed-before-deadline"),
            "majority-stalled"
        },
        {
            "a slot marked missed 26 s before it was due by a node 30 s ahead",
            e => e with
            {
                History = [.. e.History.Where(r => r.Slot != T0 + 2), Record(T0 + 2, "m2", "node-5", RunState.Missed, 0, "not-claimed-before-deadline") with { FinishedAt = At(T0 + 4) }],
                Faults = [Clock("node-5", 30)],
            },
            "premature-marker"
        },
        {
            "a slot marked missed by a node 30 s ahead after it was due",
            e => e with
            {
                History = [.. e.History.Where(r => r.Slot != T0 + 2), Record(T0 + 2, "m2", "node-5", RunState.Missed, 0, "not-claimed-before-deadline") with { FinishedAt = At(T0 + 34) }],
                Faults = [Clock("node-5", 30)],
            },
            null
        },
        {
            "a slot marked skipped by a drifting node 0.2 s before it was due by its clock, which stepped back within the skew limit",
            e => e with
            {
                History = [.. e.History.Where(r => r.Slot != T0 + 2), Record(T0 + 2, "m2", "node-3", RunState.Skipped, 0, "still-running") with { FinishedAt = At(T0 + 2) - TimeSpan.FromSeconds(0.2) }],
                Faults = [new FaultEvent(FaultKind.ClockDrift, "node-3", At(T0 - 10), At(T0 + 10), [], "test", 1.3)],
            },
            null
        },
        {
            "a slot marked skipped by a drifting node 4 s before it was due, beyond what the skew limit lets through",
            e => e with
            {
                History = [.. e.History.Where(r => r.Slot != T0 + 2), Record(T0 + 2, "m2", "node-3", RunState.Skipped, 0, "still-running") with { FinishedAt = At(T0 + 2) - TimeSpan.FromSeconds(4) }],
                Faults = [new FaultEvent(FaultKind.ClockDrift, "node-3", At(T0 - 10), At(T0 + 10), [], "test", 5)],
            },
            "premature-marker"
        },
        {
            "a slot marked skipped by a node on the true clock a second before it was due",
            e => e with { History = [.. e.History.Where(r => r.Slot != T0 + 2), Record(T0 + 2, "m2", "node-2", RunState.Skipped, 0, "still-running") with { FinishedAt = At(T0 + 1) }] },
            "premature-marker"
        },
        {
            "a slot an hour ahead marked missed during a jump ahead, by a node whose clock also jumped back later",
            e => e with
            {
                History = [.. e.History, Record(T0 + 3602, "m3602", "node-3", RunState.Missed, 0, "not-claimed-before-deadline") with { FinishedAt = At(T0 + 3605) }],
                Faults =
                [
                    new FaultEvent(FaultKind.ClockJump, "node-3", At(T0), At(T0 + 15), [], "test", 3600),
                    new FaultEvent(FaultKind.ClockJump, "node-3", At(T0 + 16), At(T0 + 19), [], "test", -3600),
                ],
            },
            "premature-marker"
        },
        {
            "a slot marked skipped by a node whose clock jumped back an hour (it may have been on time)",
            e => e with
            {
                History = [.. e.History.Where(r => r.Slot != T0 + 2), Record(T0 + 2, "m2", "node-3", RunState.Skipped, 0, "still-running") with { FinishedAt = At(T0 + 1) }],
                Faults = [Clock("node-3", -3600) with { Kind = FaultKind.ClockJump }],
            },
            null
        },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Checks(string name, Func<Evidence, Evidence> change, string? violation)
    {
        var evidence = change(Clean());
        var report = InvariantChecker.Check(new CheckInput([Task2s], Window, evidence.Runs,
            new KvEvidence(new Dictionary<string, IReadOnlyList<RunRecord>> { ["t"] = evidence.History }, new Dictionary<string, RunRecord>(), []),
            evidence.Faults, At(T0 + 20), Executors: evidence.Fleet));

        if (violation is null)
        {
            Assert.True(report.Passed, name + ": " + string.Join("; ", report.Violations));
        }
        else
        {
            Assert.Contains(report.Violations, v => v.Kind == violation);
        }
    }

    /// <summary>The invariants added for partitions, lost answers, hung servers and clocks: each fed its violation, and its clean counterpart.</summary>
    public static TheoryData<string, Func<Evidence, Evidence>, string?> MoreCases => new()
    {
        {
            "a child of a killed executor stopped within the termination grace",
            e => e with { Runs = [.. Without(e.Runs, T0 + 6), Run(T0 + 6, "node-1", 130, "r6", 50, 1200)], ChildExits = [new ChildExit("node-1", "r6", 4000, At(T0 + 6, 100), At(T0 + 6, 1300))] },
            null
        },
        {
            "a child of a killed executor that runs on 9 s",
            e => e with { Runs = [.. Without(e.Runs, T0 + 6), Run(T0 + 6, "node-1", 130, "r6", 50, 9100)], ChildExits = [new ChildExit("node-1", "r6", 4000, At(T0 + 6, 100), At(T0 + 15, 200))] },
            Invariants.ChildrenDie
        },
        {
            "a child of a killed executor still alive when the watch ended",
            e => e with { Runs = [.. Without(e.Runs, T0 + 6), Run(T0 + 6, "node-1", 130, "r6", 50, null)], ChildExits = [new ChildExit("node-1", "r6", 4000, At(T0 + 6, 100), null)] },
            Invariants.ChildrenDie
        },
        {
            "a run that started 300 ms before its slot by the true clock (its own clock 30 s ahead)",
            e => e with { Runs = [.. Without(e.Runs, T0 + 8), Run(T0 + 8, "node-1", 140, "r8", -300, 400) with { SeenStart = At(T0 + 37, 700) }] },
            Invariants.NotEarly
        },
        {
            "a run 3.5 s before its slot by the true clock (a drifting clock the guard let past its bound)",
            e => e with { Runs = [.. Without(e.Runs, T0 + 8), Run(T0 + 8, "node-1", 140, "r8", -3500, 400) with { SeenStart = At(T0 + 8, 500) }] },
            Invariants.NotEarly
        },
        {
            "a run 1.2 s before its slot on a clock 1.2 s ahead: within the skew limit",
            e => e with { Runs = [.. Without(e.Runs, T0 + 8), Run(T0 + 8, "node-1", 140, "r8", -1200, 400) with { SeenStart = At(T0 + 8, 0) }] },
            null
        },
        {
            "a run on a clock 30 s ahead that started on time by the true clock",
            e => e with { Runs = [.. Without(e.Runs, T0 + 8), Run(T0 + 8, "node-1", 140, "r8", 50, 400) with { SeenStart = At(T0 + 38, 50) }] },
            null
        },
        {
            "no task ran for 8 s after a fault healed",
            e => e with
            {
                Runs = [.. e.Runs.Where(r => r.Slot is < T0 + 4)],
                History = [.. e.History.Where(r => r.Slot < T0 + 4), .. new long[] { 4, 6, 8, 10 }.Select(o => Record(T0 + o, $"m{o}", "node-2", RunState.Missed, 0, "not-claimed-before-deadline"))],
                Faults = [Partition("node-1", T0, T0 + 1)],
            },
            Invariants.NoStall
        },
        {
            "no task ran for 8 s after a leader kill, the cluster healthy again as the leader came back",
            e => StalledAfterLeaderKill(e, T0 + 1),
            Invariants.NoStall
        },
        {
            "no task ran for 8 s after a leader kill, the cluster healthy again only a second after the leader came back",
            e => StalledAfterLeaderKill(e, T0 + 2),
            null
        },
        {
            "the task ran again within one period plus the TTL after a fault healed",
            e => e with { Faults = [Partition("node-1", T0, T0 + 1)] },
            null
        },
        {
            "a record left running after the executors stopped, its child over",
            e => e with { Current = Record(T0 + 10, "r10", "node-1", RunState.Running, 150) },
            Invariants.RecordsTrue
        },
        {
            "a record left running after the executors stopped, its child over, a leader killed since (the TTL restarted)",
            e => e with
            {
                Current = Record(T0 + 10, "r10", "node-1", RunState.Running, 150),
                Faults = [new FaultEvent(FaultKind.LeaderKill, "server-1", At(T0 + 12), At(T0 + 17), ["node-2"], "test")],
            },
            null
        },
        {
            "a record left running whose run no child witnessed",
            e => e with { Current = Record(T0 + 10, "ghost", "node-1", RunState.Running, 150) },
            Invariants.RecordsTrue
        },
        { "two starts of one slot with the same run id on two nodes", e => e with { Runs = [.. e.Runs, Run(T0 + 4, "node-2", 999, "r4", 60, 560)] }, Invariants.SlotOnce },
    };

    [Theory]
    [MemberData(nameof(MoreCases))]
    public void Checks_each_invariant_by_name(string name, Func<Evidence, Evidence> change, string? invariant)
    {
        var evidence = change(Clean());
        var report = Check(evidence);
        Assert.Equal(Invariants.All, report.InvariantViolations.Keys);
        if (invariant is null)
        {
            Assert.True(report.Passed, name + ": " + string.Join("; ", report.Violations));
            Assert.All(report.InvariantViolations.Values, count => Assert.Equal(0, count));
        }
        else
        {
            Assert.Contains(report.Violations, v => v.Invariant == invariant);
            Assert.True(report.InvariantViolations[invariant] > 0, name);
        }
    }

    [Fact]
    public void Figures_per_fault_kind_count_the_slots_under_each_fault_and_their_violations()
    {
        var clean = Clean();
        var report = Check(clean with
        {
            Runs = [.. Without(clean.Runs, T0 + 6), Run(T0 + 6, "node-1", 130, "r6", 50, 9100)],
            Faults = [Kill("node-1", T0 + 6, 100)],
            ChildExits = [new ChildExit("node-1", "r6", 4000, At(T0 + 6, 100), At(T0 + 15, 200))],
        });

        var kill = Assert.Single(report.ByFault, f => f.Fault == nameof(FaultKind.ExecutorKill));
        Assert.Equal((1, 2, 2, 0, 0), (kill.Injected, kill.SlotsDue, kill.Ran, kill.Skipped, kill.Missed));
        Assert.Equal(1, kill.Violations[Invariants.ChildrenDie]);
        var none = Assert.Single(report.ByFault, f => f.Fault == "none");
        Assert.Equal((0, 4, 3, 1), (none.Injected, none.SlotsDue, none.Ran, none.Skipped));
        Assert.Equal(0, none.Violations[Invariants.ChildrenDie]);
    }

    [Fact]
    public void A_fenced_overlap_is_reported_apart_with_its_cause()
    {
        var clean = Clean();
        var report = InvariantChecker.Check(new CheckInput([Task2s], Window,
            [.. Without(clean.Runs, T0 + 6), Run(T0 + 6, "node-2", 130, "r6", 50, 2500)],
            new KvEvidence(new Dictionary<string, IReadOnlyList<RunRecord>> { ["t"] = clean.History }, new Dictionary<string, RunRecord>(), []),
            [Kill("node-2", T0 + 6, 200)], At(T0 + 20)));

        var overlap = Assert.Single(report.FencedOverlaps);
        Assert.Contains("ExecutorKill of node-2", overlap.Cause, StringComparison.Ordinal);
        var figures = Assert.Single(report.Tasks);
        Assert.Equal((6, 5, 1, 0, 1), (figures.Slots, figures.RanOnce, figures.Skipped, figures.Overlaps, figures.FencedOverlaps));
        Assert.Equal(1, report.NotRunReasons["skipped: still-running"]);
    }

    [Fact]
    public void A_child_stopped_with_its_executor_ends_when_it_was_seen_gone_and_overlaps_nothing()
    {
        var clean = Clean();
        // The tree of node-2 (holding slot 6) paused: its child never writes an end line; its watchdog kills it at 6.9 s,
        // before node-1 starts slot 8.
        var paused = clean with
        {
            Runs = [.. Without(clean.Runs, T0 + 6), Run(T0 + 6, "node-2", 130, "r6", 50, null)],
            Faults = [new FaultEvent(FaultKind.TreePause, "node-2", At(T0 + 6, 100), At(T0 + 9), ["node-2"], "test")],
        };

        var unseen = Check(paused);
        Assert.NotEmpty(unseen.FencedOverlaps); // Without the evidence of its end it is taken to run until the evidence was taken.

        var report = Check(paused with { ChildExits = [new ChildExit("node-2", "r6", 4000, At(T0 + 6, 100), At(T0 + 6, 900), FaultKind.TreePause)] });
        Assert.Empty(report.FencedOverlaps);
        Assert.True(report.Passed, string.Join("; ", report.Violations));

        // A child that outlived its paused tree long is not a child outliving a killed executor: (f) judges kills only.
        var late = Check(paused with { ChildExits = [new ChildExit("node-2", "r6", 4000, At(T0 + 6, 100), At(T0 + 7, 900), FaultKind.TreePause)] });
        Assert.Equal(0, late.InvariantViolations[Invariants.ChildrenDie]);
    }

    /// <summary>Slot 4 failed (status 1) on node-1 and was retried there: <paramref name="retries"/> more children after it.</summary>
    private static Evidence RetriedSlot(Evidence e, params WitnessRun[] retries) => e with
    {
        Runs = [.. Without(e.Runs, T0 + 4), Run(T0 + 4, "node-1", 120, "r4", 50, 300) with { Status = 1, Host = "node-1" }, .. retries],
        History = [.. e.History.Where(r => r.Slot != T0 + 4), Record(T0 + 4, "r4", "node-1", RunState.Succeeded, 120) with { Attempt = 1 + retries.Length }],
    };

    private static WitnessRun Retry(string node, int startMs, int endMs, int status, string runId = "r4") =>
        Run(T0 + 4, node, 120, runId, startMs, endMs) with { Status = status, Host = node, Pid = 4000 + startMs };

    public static TheoryData<string, Func<Evidence, Evidence>, int, string?> RetryCases => new()
    {
        { "a failed child retried on its node after its end", e => RetriedSlot(e, Retry("node-1", 800, 1100, 0)), 2, null },
        { "two retries, the limit", e => RetriedSlot(e, Retry("node-1", 800, 1000, 1), Retry("node-1", 1200, 1400, 0)) with { History = [.. e.History.Where(r => r.Slot != T0 + 4), Record(T0 + 4, "r4", "node-1", RunState.Succeeded, 120) with { Attempt = 3 }] }, 2, null },
        { "a retry of a task without retries", e => RetriedSlot(e, Retry("node-1", 800, 1100, 0)), 0, "duplicate" },
        { "three retries, over the limit of two", e => RetriedSlot(e, Retry("node-1", 800, 900, 1), Retry("node-1", 1000, 1100, 1), Retry("node-1", 1200, 1300, 0)), 2, "duplicate" },
        { "a second child after the first succeeded", e => RetriedSlot(e, Retry("node-1", 800, 1100, 0)) with { Runs = [.. RetriedSlot(e, Retry("node-1", 800, 1100, 0)).Runs.Select(r => r.Pid == 4000 && r.Slot == T0 + 4 ? r with { Status = 0 } : r)] }, 2, "duplicate" },
        { "a retry on another host", e => RetriedSlot(e, Retry("node-2", 800, 1100, 0)), 2, "duplicate" },
        { "a retry started before the failed child ended", e => RetriedSlot(e, Retry("node-1", 250, 1100, 0)), 2, "duplicate" },
        { "a retry under another run id", e => RetriedSlot(e, Retry("node-1", 800, 1100, 0, "other")), 2, "duplicate" },
        { "more children than the record's attempts", e => RetriedSlot(e, Retry("node-1", 800, 1100, 0)) with { History = [.. e.History.Where(r => r.Slot != T0 + 4), Record(T0 + 4, "r4", "node-1", RunState.Succeeded, 120)] }, 2, "record-contradicts-witness" },
        { "recorded succeeded, the last child exited 1", e => RetriedSlot(e, Retry("node-1", 800, 1100, 1)), 2, "record-contradicts-witness" },
        {
            "recorded failed with exit code 1, the last child exited 1",
            e => RetriedSlot(e, Retry("node-1", 800, 1100, 1)) with { History = [.. e.History.Where(r => r.Slot != T0 + 4), Record(T0 + 4, "r4", "node-1", RunState.Failed, 120) with { Attempt = 2, ExitCode = 1 }] },
            2, null
        },
        {
            "recorded failed with exit code 1, the child exited 0",
            e => e with { History = [.. e.History.Where(r => r.Slot != T0 + 8), Record(T0 + 8, "r8", "node-1", RunState.Failed, 140) with { ExitCode = 1 }], Runs = [.. e.Runs.Select(r => r with { Status = 0 })] },
            2, "record-contradicts-witness"
        },
    };

    [Theory]
    [MemberData(nameof(RetryCases))]
    public void Retries_are_judged_by_the_childrens_own_end_lines(string name, Func<Evidence, Evidence> change, int limit, string? violation)
    {
        var evidence = change(Clean());
        var report = Check(evidence, Task2s with { RetryLimit = limit });
        if (violation is null)
        {
            Assert.True(report.Passed, name + ": " + string.Join("; ", report.Violations));
        }
        else
        {
            Assert.Contains(report.Violations, v => v.Kind == violation);
        }
    }

    private static readonly SubmittedTrigger Sent1 = new("t", "trig1", At(T0 + 1), true);

    /// <summary>Trigger trig1 sent at T0+1 ran on node-2 at T0+2.2 s (its DTASK_SLOT the claim instant, T0+2, like a scheduled slot's), and is recorded succeeded.</summary>
    private static Evidence Triggered(Evidence e) => e with
    {
        Runs = [.. e.Runs, Run(T0 + 2, "node-2", 115, "m1", 200, 400) with { Trigger = "trig1", Status = 0, Pid = 5000 }],
        Manual = [Record(T0 + 2, "m1", "node-2", RunState.Succeeded, 115) with { Trigger = "trig1", TriggerIndex = 77 }],
    };

    public static TheoryData<string, Func<Evidence, Evidence>, IReadOnlyList<SubmittedTrigger>, string?> TriggerCases => new()
    {
        { "a trigger run once, recorded, beside a slot of the same second", Triggered, [Sent1], null },
        { "a trigger dropped with a reason", e => e with { Manual = [Record(0, "d1", "node-3", RunState.Skipped, 0, "trigger-expired: the task was busy for 1h") with { Trigger = "trig1", TriggerIndex = 77 }] }, [Sent1], null },
        { "a trigger still pending", e => e with { Pending = ["trig1"] }, [Sent1], null },
        { "an unanswered trigger never seen", e => e, [Sent1 with { Confirmed = false }], null },
        { "a confirmed trigger never seen", e => e, [Sent1], "unexplained-trigger" },
        { "a trigger started twice", e => Triggered(e) with { Runs = [.. Triggered(e).Runs, Run(T0 + 9, "node-3", 300, "m2", 800, 900) with { Trigger = "trig1", Status = 0, Pid = 5001 }] }, [Sent1], "duplicate" },
        { "a manual child for a request never sent", Triggered, [], "duplicate" },
        { "a trigger that ran but is recorded dropped", e => Triggered(e) with { Manual = [Record(0, "m1", "node-3", RunState.Skipped, 0, "trigger-expired") with { Trigger = "trig1" }] }, [Sent1], "record-contradicts-witness" },
        { "a trigger that ran and is still pending", e => Triggered(e) with { Pending = ["trig1"] }, [Sent1], "record-contradicts-witness" },
        { "a trigger recorded succeeded that no child witnessed", e => Triggered(e) with { Runs = e.Runs }, [Sent1], "record-without-witness" },
        { "a trigger that ran and has no record", e => Triggered(e) with { Manual = [] }, [Sent1], "run-without-record" },
        { "a trigger recorded succeeded whose child exited 1", e => Triggered(e) with { Runs = [.. e.Runs, Run(T0 + 2, "node-2", 115, "m1", 200, 400) with { Trigger = "trig1", Status = 1, Pid = 5000 }] }, [Sent1], "record-contradicts-witness" },
        { "a manual child overlapping a scheduled one", e => Triggered(e) with { Runs = [.. e.Runs, Run(T0 + 4, "node-2", 145, "m1", 200, 400) with { Trigger = "trig1", Status = 0, Pid = 5000 }] }, [Sent1], "overlap" },
    };

    [Theory]
    [MemberData(nameof(TriggerCases))]
    public void Manual_runs_are_judged_by_their_trigger(string name, Func<Evidence, Evidence> change, IReadOnlyList<SubmittedTrigger> sent, string? violation)
    {
        var evidence = change(Clean());
        var report = Check(evidence, Task2s, sent);
        if (violation is null)
        {
            Assert.True(report.Passed, name + ": " + string.Join("; ", report.Violations));
            Assert.NotNull(report.Triggers);
        }
        else
        {
            Assert.Contains(report.Violations, v => v.Kind == violation);
        }
    }

    /// <summary>Slot 8 started 3.5 s early on node-1, drifting; node-4 and node-5 on clocks 30 s off the whole run.</summary>
    private static Evidence DriftingWithSkewedPeers(Evidence e) => e with
    {
        Runs = [.. Without(e.Runs, T0 + 8), Run(T0 + 8, "node-1", 140, "r8", -3500, 400) with { SeenStart = At(T0 + 8, 500) }],
        Faults = [new FaultEvent(FaultKind.ClockDrift, "node-1", At(T0 - 10), At(T0 + 20), [], "test", 5), Clock("node-4", -30), Clock("node-5", 30)],
    };

    [Fact]
    public void An_early_start_is_the_documented_two_clock_limit_only_without_two_right_reachable_peers()
    {
        // node-2 and node-3 on right clocks and reachable: the guard had two right witnesses against its agent.
        var judged = Check(DriftingWithSkewedPeers(Clean()));
        Assert.True(judged.Violations.Any(v => v.Kind == "early-fire" && v.Slot == T0 + 8), string.Join("; ", judged.EarlyUnderClockLimit ?? []));
        Assert.Empty(judged.EarlyUnderClockLimit ?? []);

        // node-3 cut off from Consul meanwhile: one right witness (node-2) against the agent on node-1's own clock.
        var limited = Check(DriftingWithSkewedPeers(Clean()) with
        {
            Faults = [.. DriftingWithSkewedPeers(Clean()).Faults, Partition("node-3", T0 + 1, T0 + 12)],
        });
        Assert.DoesNotContain(limited.Violations, v => v.Kind == "early-fire");
        var line = Assert.Single(limited.EarlyUnderClockLimit ?? []);
        Assert.Contains("reachable: node-2", line, StringComparison.Ordinal);

        // A peer cut off long before (healed more than a TTL earlier) counts again.
        var healed = Check(DriftingWithSkewedPeers(Clean()) with
        {
            Faults = [.. DriftingWithSkewedPeers(Clean()).Faults, Partition("node-3", T0 - 10, T0 + 3)],
        });
        Assert.Contains(healed.Violations, v => v.Kind == "early-fire");
    }

    /// <summary>A server partition from T0 − 2 s to T0 + 10 s; the majority side ran nothing from slot 6 on (recorded missed by node-1).</summary>
    private static Evidence MajorityIdle(Evidence e, params FaultEvent[] more) => e with
    {
        Runs = [.. e.Runs.Where(r => r.Slot < T0 + 6)],
        History = [.. e.History.Where(r => r.Slot < T0 + 6), .. new long[] { 6, 8, 10 }.Select(o => Record(T0 + o, $"m{o}", "node-1", RunState.Missed, 0, "not-claimed-before-deadline"))],
        Faults = [ServerPartition(["node-9"], T0 - 2, T0 + 10), .. more],
        Fleet = ["node-1", "node-3", "node-4", "node-9"],
    };

    [Fact]
    public void A_majority_whose_only_right_executor_is_outvoted_or_just_restarted_is_not_stalled()
    {
        // TTL 1 s in Check: the majority must run from T0 − 2 + 2 + 5 = T0 + 5 to T0 + 10.
        Assert.Contains(Check(MajorityIdle(Clean())).Violations, v => v.Kind == "majority-stalled");

        // node-3 and node-4 on wrong clocks outvote node-1 (and its agent, which shares its clock).
        var outvoted = Check(MajorityIdle(Clean(), Clock("node-3", -30), Clock("node-4", 5)));
        Assert.DoesNotContain(outvoted.Violations, v => v.Kind == "majority-stalled");

        // One wrong clock against node-1 and its agent: a tie, which goes to node-1.
        Assert.Contains(Check(MajorityIdle(Clean(), Clock("node-3", -30))).Violations, v => v.Kind == "majority-stalled");

        // node-1 started again 3 s into the partition: it waits for its peers' clocks (those across the cut never come).
        var restarted = Check(MajorityIdle(Clean(), new FaultEvent(FaultKind.ExecutorKill, "node-1", At(T0 - 3), At(T0 + 1), ["node-1"], "test")) with { Fleet = ["node-1", "node-9"] });
        Assert.DoesNotContain(restarted.Violations, v => v.Kind == "majority-stalled");

        // Started again long before the check began: no excuse.
        var early = Check(MajorityIdle(Clean(), new FaultEvent(FaultKind.ExecutorKill, "node-1", At(T0 - 60), At(T0 - 50), ["node-1"], "test")) with { Fleet = ["node-1", "node-9"] });
        Assert.Contains(early.Violations, v => v.Kind == "majority-stalled");
    }

    public sealed record Evidence(IReadOnlyList<WitnessRun> Runs, IReadOnlyList<RunRecord> History, IReadOnlyList<FaultEvent> Faults)
    {
        public IReadOnlyList<ChildExit> ChildExits { get; init; } = [];

        public RunRecord? Current { get; init; }

        public IReadOnlyList<RunRecord> Manual { get; init; } = [];

        public IReadOnlyList<string> Pending { get; init; } = [];

        public IReadOnlyList<string> Fleet { get; init; } = ["node-1", "node-2", "node-3", "node-4", "node-5"];
    }

    private static ChaosReport Check(Evidence evidence, ChaosTask? task = null, IReadOnlyList<SubmittedTrigger>? triggers = null) =>
        InvariantChecker.Check(new CheckInput([task ?? Task2s], Window, evidence.Runs,
            new KvEvidence(new Dictionary<string, IReadOnlyList<RunRecord>> { ["t"] = evidence.History },
                evidence.Current is { } current ? new Dictionary<string, RunRecord> { ["t"] = current } : new Dictionary<string, RunRecord>(), [],
                new Dictionary<string, IReadOnlyList<RunRecord>> { ["t"] = evidence.Manual }, new Dictionary<string, IReadOnlyList<string>> { ["t"] = evidence.Pending }),
            evidence.Faults, At(T0 + 20), evidence.ChildExits, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1), triggers, evidence.Fleet));

    /// <summary>
    /// A server partition from T0 − 20 s to T0 + 10 s with the last child (slot T0 + 4) on node-2, which a tree pause from
    /// <paramref name="paused"/> to T0 + 12 s stopped; the later slots recorded <paramref name="later"/> by node-1.
    /// </summary>
    private static Evidence LastChildOnAPausedExecutor(Evidence e, DateTimeOffset paused, RunState later, string reason) => e with
    {
        Runs = [.. e.Runs.Where(r => r.Slot < T0 + 4), Run(T0 + 4, "node-2", 120, "r4", 50, 550)],
        History = [.. e.History.Where(r => r.Slot < T0 + 4), Record(T0 + 4, "r4", "node-2", RunState.Succeeded, 120),
            .. new long[] { 6, 8, 10 }.Select(o => Record(T0 + o, $"x{o}", "node-1", later, 0, reason))],
        Faults = [ServerPartition(["node-9"], T0 - 20, T0 + 10), new FaultEvent(FaultKind.TreePause, "node-2", paused, At(T0 + 12), ["node-2"], "test")],
    };

    [Fact]
    public void A_marker_early_on_a_drifting_clock_with_no_right_clock_in_reach_is_listed_apart()
    {
        // node-3 drifts ahead and writes a marker 3.7 s early; node-1 and node-2 are cut off, node-4 and node-5 are 30 s off.
        Evidence Early(params FaultEvent[] more) => Clean() with
        {
            History = [.. Clean().History.Where(r => r.Slot != T0 + 2), Record(T0 + 2, "m2", "node-3", RunState.Skipped, 0, "still-running") with { FinishedAt = At(T0 + 2) - TimeSpan.FromSeconds(3.7) }],
            Faults = [new FaultEvent(FaultKind.ClockDrift, "node-3", At(T0 - 10), At(T0 + 10), [], "test", 5), Clock("node-4", -30), Clock("node-5", 30), .. more],
        };

        var limited = Check(Early(Partition("node-1", T0 - 20, T0 + 20), Partition("node-2", T0 - 20, T0 + 20)));
        Assert.DoesNotContain(limited.Violations, v => v.Kind == "premature-marker");
        Assert.Contains(limited.EarlyUnderClockLimit!, e => e.Contains("marker", StringComparison.Ordinal));

        // With node-1 and node-2 in reach on right clocks, the same marker is a violation.
        Assert.Contains(Check(Early()).Violations, v => v.Kind == "premature-marker");
    }

    /// <summary>No child from slot T0 + 4 on (the slots recorded missed), after a leader killed from T0 to T0 + 1 s; the cluster healthy again at <paramref name="healthyAt"/>.</summary>
    private static Evidence StalledAfterLeaderKill(Evidence e, long healthyAt) => e with
    {
        Runs = [.. e.Runs.Where(r => r.Slot is < T0 + 4)],
        History = [.. e.History.Where(r => r.Slot < T0 + 4), .. new long[] { 4, 6, 8, 10 }.Select(o => Record(T0 + o, $"m{o}", "node-2", RunState.Missed, 0, "not-claimed-before-deadline"))],
        Faults = [new FaultEvent(FaultKind.LeaderKill, "server-1", At(T0), At(T0 + 1), ["node-1"], "test") { HealthyAt = At(healthyAt) }],
    };

    private static DateTimeOffset At(long unixSeconds, int milliseconds = 0) => DateTimeOffset.FromUnixTimeSeconds(unixSeconds).AddMilliseconds(milliseconds);

    private static WitnessRun Run(long slot, string node, long fence, string runId, int startMs, int? endMs) =>
        new("t", slot, node, fence, runId, 4000, At(slot, startMs), endMs is { } end ? At(slot, end) : null, false);

    private static FaultEvent Partition(string node, long from, long to) => new(FaultKind.HolderPartition, node, At(from), At(to), [node], "test");

    private static FaultEvent ServerPartition(IReadOnlyList<string> cutOff, long from, long to) => new(FaultKind.ConsulPartition, "server-1", At(from), At(to), cutOff, "test");

    private static FaultEvent Clock(string node, double offset) => new(FaultKind.ClockOffset, node, At(T0 - 60), At(T0 + 20), [], "test", offset);

    private static IEnumerable<WitnessRun> Without(IEnumerable<WitnessRun> runs, long slot) => runs.Where(r => r.Slot != slot);

    private static FaultEvent Kill(string node, long atSlot, int ms) => new(FaultKind.ExecutorKill, node, At(atSlot, ms), At(atSlot + 10), [node], "test");

    private static RunRecord Record(long slot, string runId, string node, RunState state, long fence, string? reason = null) => new()
    {
        Slot = slot,
        RunId = runId,
        Node = node,
        State = state,
        Fence = fence,
        Reason = reason,
    };
}
