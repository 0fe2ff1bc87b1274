using System.Reflection;
using Dtask.Consul.Http;
using Dtask.Consul.Errors;
using Dtask.Consul.Locking;
using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Executor.Claims;
using Dtask.Executor.Daemon;
using Dtask.Executor.Ledger;
using Dtask.Executor.Processes;
using Dtask.Executor.Tests.Support;
using Dtask.Testing;
using Dtask.Testing.Ledger;
using Microsoft.Extensions.Time.Testing;
using Serilog.Core;

namespace Dtask.Executor.Tests.Daemon;

/// <summary>
/// Interleavings of whole slots — ranking, retries, Replace, markers, the clock guard — driven in process: contenders
/// over the in-memory ledger (held to the Consul ledger by the ledger conformance tests), a fake clock moved on by the
/// test, children that are real processes writing their own witness lines.
/// </summary>
public sealed class SlotContenderInterleavingTests : IDisposable
{
    private const long Slot = 1_900_000_000;
    private static readonly TimeSpan Window = TimeSpan.FromSeconds(5);
    private readonly TaskId task = new("ops", "job-" + Guid.NewGuid().ToString("N")[..8]);
    private readonly FakeTimeProvider time = new(DateTimeOffset.FromUnixTimeSeconds(Slot));
    private readonly InMemoryTaskLedger ledger;
    private readonly TempDirectory directory = new();
    private readonly EventLog events = new();

    public SlotContenderInterleavingTests() => ledger = new InMemoryTaskLedger(time);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private string Witness => Path.Combine(directory.Path, "witness");

    [Fact]
    public async Task A_node_whose_clock_is_skewed_neither_claims_nor_marks_and_the_other_node_runs_every_slot()
    {
        using var session = ledger.OpenSession();
        using var skewedSession = ledger.OpenSession();
        var good = Contender("good", new Sessions(session));
        var aheadGuard = Guard("ahead");
        var ahead = Contender("ahead", new Sessions(skewedSession), aheadGuard);
        var definition = Definition($"echo \"$DTASK_SLOT $DTASK_NODE\" >> '{Witness}'");

        // The agent's header says this clock is 30 s ahead.
        aheadGuard.Observe(new ConsulResponseMeta(1, true, TimeSpan.Zero, time.GetUtcNow() - TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(5)));
        Assert.False(aheadGuard.MayWrite);

        // Alone, the skewed node lets the slot pass its deadline: it claims nothing and records nothing.
        await DriveAsync(ahead.ContendAsync(definition, Ticket(Slot), Ct));
        Assert.Null((await ledger.ReadRunAsync(task, Ct)).Record);
        Assert.False(await ledger.HasHistoryAsync(task, Slot, consistent: true, Ct));
        await DriveAsync(ahead.RecordMissedAsync(definition, [Slot], RunReasons.NotClaimedBeforeDeadline, Ct));
        Assert.False(await ledger.HasHistoryAsync(task, Slot, consistent: true, Ct));
        Assert.Empty(events.Events);

        // Beside a good node, each later slot runs once, on the good node.
        for (var slot = Slot + 10; slot <= Slot + 30; slot += 10)
        {
            time.SetUtcNow(DateTimeOffset.FromUnixTimeSeconds(slot));
            var ticket = Ticket(slot);
            await DriveAsync(Task.WhenAll(ahead.ContendAsync(definition, ticket, Ct), good.ContendAsync(definition, ticket, Ct)));
        }

        Assert.Equal([$"{Slot + 10} good", $"{Slot + 20} good", $"{Slot + 30} good"], await File.ReadAllLinesAsync(Witness, Ct));
        var history = await ledger.ReadHistoryAsync(task, Ct);
        Assert.Equal([(Slot + 30, "good"), (Slot + 20, "good"), (Slot + 10, "good")], history.Select(r => (r.Slot, r.Node)));
        Assert.DoesNotContain(events.Events, e => e.StartsWith("missed", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Missed_markers_planned_while_the_guard_held_writes_are_written_once_the_clock_is_found_right_within_the_wait()
    {
        using var session = ledger.OpenSession();
        var guard = Guard("late");
        var contender = Contender("late", new Sessions(session), guard);
        var definition = Definition("true");
        guard.Observe(new ConsulResponseMeta(1, true, TimeSpan.Zero, time.GetUtcNow() - TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(5)));
        Assert.False(guard.MayWrite);
        time.Advance(TimeSpan.FromSeconds(20));

        // The planner found the slot missed while this node could not write (no other executor could either).
        var recording = contender.RecordMissedAsync(definition, [Slot], RunReasons.NotFiredInTime, Ct);
        for (var i = 0; i < 50; i++)
        {
            time.Advance(TimeSpan.FromMilliseconds(20));
            await Task.Delay(2, Ct);
        }

        Assert.False(recording.IsCompleted, "the marker was given up before the guard's wait was over");
        guard.Observe(new ConsulResponseMeta(1, true, TimeSpan.Zero, time.GetUtcNow(), TimeSpan.FromMilliseconds(5)));
        await DriveAsync(recording);

        var entry = Assert.Single(await ledger.ReadHistoryAsync(task, Ct));
        Assert.Equal((Slot, RunState.Missed, RunReasons.NotFiredInTime), (entry.Slot, entry.State, entry.Reason));
    }

    [Fact]
    public async Task A_wall_clock_jump_of_an_hour_while_running_stops_claims_and_markers_until_the_clock_is_back()
    {
        using var session = ledger.OpenSession();
        var clock = new JumpingClock(time);
        var guard = new ClockSkewGuard(ExecutorOptions.DefaultSkewLimit, clock, Logger.None, "jumpy");
        var contender = Contender("jumpy", new Sessions(session), guard, clock: clock);
        var definition = Definition($"echo \"$DTASK_SLOT\" >> '{Witness}'");
        guard.Observe(new ConsulResponseMeta(1, true, TimeSpan.Zero, time.GetUtcNow(), TimeSpan.FromMilliseconds(5)));
        await DriveAsync(contender.ContendAsync(definition, Ticket(Slot), Ct));
        Assert.True(guard.MayWrite);

        // This node's wall clock jumps an hour ahead; its monotonic clock does not: the agent's last header now says +1 h.
        clock.Jump(TimeSpan.FromHours(1));
        Assert.False(guard.MayWrite);
        var jumped = clock.GetUtcNow().ToUnixTimeSeconds() / 10 * 10;
        await DriveAsync(contender.ContendAsync(definition, Ticket(jumped), Ct));
        await DriveAsync(contender.RecordMissedAsync(definition, [Slot + 10, Slot + 20], RunReasons.NotClaimedBeforeDeadline, Ct));

        Assert.Equal([$"{Slot}"], await File.ReadAllLinesAsync(Witness, Ct));
        Assert.Equal([Slot], (await ledger.ReadHistoryAsync(task, Ct)).Select(r => r.Slot));
        Assert.DoesNotContain(events.Events, e => e.StartsWith("missed", StringComparison.Ordinal));

        // Set right again: it claims again.
        clock.Jump(-TimeSpan.FromHours(1));
        Assert.True(guard.MayWrite);
        var next = (time.GetUtcNow().ToUnixTimeSeconds() / 10 * 10) + 10;
        time.SetUtcNow(DateTimeOffset.FromUnixTimeSeconds(next));
        await DriveAsync(contender.ContendAsync(definition, Ticket(next), Ct));
        Assert.Equal([$"{Slot}", $"{next}"], await File.ReadAllLinesAsync(Witness, Ct));
    }

    [Fact]
    public async Task A_slot_planned_before_the_wall_clock_moved_back_is_not_claimed_before_its_instant_by_the_clock()
    {
        using var session = ledger.OpenSession();
        var clock = new JumpingClock(time);
        var contender = Contender("node-a", new Sessions(session), clock: clock);
        var definition = Definition($"echo \"$DTASK_SLOT\" >> '{Witness}'");
        var ticket = new SlotTicket(Slot, DateTimeOffset.FromUnixTimeSeconds(Slot), DateTimeOffset.FromUnixTimeSeconds(Slot + 10));

        // Planned when due; before the claim the wall clock steps back 8 s.
        clock.Jump(-TimeSpan.FromSeconds(8));
        var contending = contender.ContendAsync(definition, ticket, Ct);
        while (clock.GetUtcNow() < ticket.FireTime - TimeSpan.FromMilliseconds(200))
        {
            time.Advance(TimeSpan.FromMilliseconds(100));
            await Task.Delay(2, Ct);
            Assert.True((await ledger.ReadRunAsync(task, Ct)).Record is null, $"claimed at {clock.GetUtcNow():O} by the node's clock, before the slot's instant");
        }

        await DriveAsync(contending);

        var run = (await ledger.ReadHistoryAsync(task, Ct)).Single();
        Assert.Equal((Slot, RunState.Succeeded), (run.Slot, run.State));
        Assert.Equal([$"{Slot}"], await File.ReadAllLinesAsync(Witness, Ct));
    }

    [Fact]
    public async Task Replace_stops_the_running_slot_for_the_next_one_while_a_manual_trigger_is_pending_and_the_trigger_stays_pending()
    {
        using var sessionA = ledger.OpenSession();
        using var sessionB = ledger.OpenSession();
        var runsA = new RunningRuns();
        var runsB = new RunningRuns();
        var a = Contender("node-a", new Sessions(sessionA), runs: runsA);
        var b = Contender("node-b", new Sessions(sessionB), runs: runsB);
        var definition = Definition($"echo \"start $DTASK_SLOT\" >> '{Witness}'; sleep 300; echo \"end $DTASK_SLOT\" >> '{Witness}'", ConcurrencyPolicy.Replace);
        using var driving = new CancellationTokenSource();
        var driver = DriveUntilCancelledAsync(driving.Token);
        try
        {
            var first = a.ContendAsync(definition, Ticket(Slot), Ct);
            Assert.True(await Eventually.TrueAsync(() => File.Exists(Witness), TimeSpan.FromSeconds(30)), "the first slot's child never started");
            var holder = (await ledger.ReadRunAsync(task, Ct)).Record!;
            var trigger = ledger.AddTrigger(task, "manual-1");

            var next = Slot + 20;
            time.SetUtcNow(DateTimeOffset.FromUnixTimeSeconds(next));
            var second = b.ContendAsync(definition, new SlotTicket(next, time.GetUtcNow(), time.GetUtcNow() + TimeSpan.FromSeconds(60)), Ct);

            // The holder's control watch: the stop request of its run arrives and stops its child.
            Assert.True(await Eventually.EqualsAsync(() => ledger.HasStopRequestAsync(task, holder.RunId, Ct), true, TimeSpan.FromSeconds(30)),
                "no stop request for the running slot although a trigger is pending");
            Assert.True(runsA.TryStop(task, holder.RunId, StopReason.Replaced));
            await first.WaitAsync(TimeSpan.FromSeconds(30), Ct);
            Assert.True(await Eventually.TrueAsync(() => File.ReadAllLines(Witness).Length >= 2, TimeSpan.FromSeconds(30)), "the next slot's child never started");

            var lines = await File.ReadAllLinesAsync(Witness, Ct);
            Assert.Equal([$"start {Slot}", $"start {next}"], lines);
            var run = (await ledger.ReadRunAsync(task, Ct)).Record!;
            Assert.Equal((next, "node-b", RunState.Running), (run.Slot, run.Node, run.State));
            Assert.True(runsB.TryStop(task, run.RunId, StopReason.Replaced));
            await second.WaitAsync(TimeSpan.FromSeconds(30), Ct);
            var replaced = Assert.Single(await ledger.ReadHistoryAsync(task, Ct), r => r.Slot == Slot);
            Assert.Equal("node-a", replaced.Node);
            Assert.NotEqual(RunState.Succeeded, replaced.State);
            Assert.Equal(trigger.CreateIndex, ledger.PendingTriggers(task).Single());
        }
        finally
        {
            await driving.CancelAsync();
            await driver;
        }
    }

    [Fact]
    public async Task A_claim_whose_answer_is_lost_and_cannot_be_read_back_before_the_deadline_is_released_recorded_missed_and_blocks_nothing()
    {
        using var session = ledger.OpenSession();
        var tap = LedgerTap.Over(ledger);
        var contender = Contender("node-a", new Sessions(session), ledger: (ITaskLedger)(object)tap);
        var definition = Definition($"echo \"$DTASK_SLOT\" >> '{Witness}'");
        var ticket = Ticket(Slot);

        // The claim commits, its answer is lost, and Consul stays unreachable from this node until the deadline.
        ledger.LoseNextClaimAnswer();
        var claims = 0;
        tap.Before = method =>
        {
            if (method == nameof(ITaskLedger.ClaimAsync) && ++claims == 1)
            {
                return; // The lost answer.
            }

            if (claims >= 1 && time.GetUtcNow() <= ticket.Deadline && method != nameof(ITaskLedger.ReleaseUnconfirmedAsync))
            {
                throw new ConsulUnreachableException("the test", "the agent cannot be reached", null);
            }
        };

        await DriveAsync(contender.ContendAsync(definition, ticket, Ct));

        Assert.False(File.Exists(Witness));
        Assert.Null(ledger.LockHolder(task));
        var entry = Assert.Single(await ledger.ReadHistoryAsync(task, Ct));
        Assert.Equal((Slot, RunState.Missed, SlotClaimer.ClaimUnconfirmedReason), (entry.Slot, entry.State, entry.Reason));
        Assert.Contains($"missed {Slot}", events.Events);

        // The next slot is not blocked by the released claim.
        time.SetUtcNow(DateTimeOffset.FromUnixTimeSeconds(Slot + 10));
        await DriveAsync(contender.ContendAsync(definition, Ticket(Slot + 10), Ct));
        Assert.Equal([$"{Slot + 10}"], await File.ReadAllLinesAsync(Witness, Ct));
    }

    [Fact]
    public async Task A_claim_whose_answer_is_lost_is_read_back_as_ours_and_runs_once()
    {
        using var session = ledger.OpenSession();
        var contender = Contender("node-a", new Sessions(session));
        var definition = Definition($"echo \"$DTASK_SLOT\" >> '{Witness}'");
        ledger.LoseNextClaimAnswer();

        await DriveAsync(contender.ContendAsync(definition, Ticket(Slot), Ct));

        Assert.Equal([$"{Slot}"], await File.ReadAllLinesAsync(Witness, Ct));
        var entry = Assert.Single(await ledger.ReadHistoryAsync(task, Ct));
        Assert.Equal((Slot, RunState.Succeeded), (entry.Slot, entry.State));
        Assert.Null(ledger.LockHolder(task));
    }

    [Fact]
    public async Task Slots_before_the_last_handled_one_are_not_recorded_missed_when_their_history_was_trimmed()
    {
        using var session = ledger.OpenSession();
        var contender = Contender("node-a", new Sessions(session));
        var definition = Definition($"echo \"$DTASK_SLOT\" >> '{Witness}'", history: 2);
        for (var slot = Slot; slot <= Slot + 40; slot += 10)
        {
            time.SetUtcNow(DateTimeOffset.FromUnixTimeSeconds(slot));
            await DriveAsync(contender.ContendAsync(definition, Ticket(slot), Ct));
        }

        Assert.Equal([Slot + 40, Slot + 30], (await ledger.ReadHistoryAsync(task, Ct)).Select(r => r.Slot));

        // A node that comes back (paused, or newly selected) plans the slots it never saw: all ran, some are trimmed.
        var late = Contender("node-b", new Sessions(session));
        await DriveAsync(late.RecordMissedAsync(definition, [Slot, Slot + 10, Slot + 20, Slot + 30, Slot + 40], RunReasons.NotClaimedBeforeDeadline, Ct));

        Assert.Equal([Slot + 40, Slot + 30], (await ledger.ReadHistoryAsync(task, Ct)).Select(r => r.Slot));
        Assert.DoesNotContain(events.Events, e => e.StartsWith("missed", StringComparison.Ordinal));
        Assert.Equal(5, (await File.ReadAllLinesAsync(Witness, Ct)).Length);
    }

    [Fact]
    public async Task RoundRobin_counts_a_run_still_going_as_its_nodes_turn()
    {
        // A task whose order by history alone would put node-a first again at the second slot.
        var task = Enumerable.Range(0, 100).Select(i => new TaskId("ops", $"rotate-{i}"))
            .First(t => SlotRanking.ByLeastRecent(t, Slot + 10, ["node-a", "node-b"], new Dictionary<string, long>())[0] == "node-a");
        using var sessionA = ledger.OpenSession();
        using var sessionB = ledger.OpenSession();
        var runsA = new RunningRuns();
        var runsB = new RunningRuns();
        var view = new ClusterView();
        view.SetNodes([Node("node-a"), Node("node-b")]);
        // A rank step long enough for the first-ranked node to have the running child stopped and claim before the
        // second looks (under Replace the second would otherwise contend for the hand-over too): 9 s of the fake clock,
        // about a second of real time for the real child to be stopped, yet before the next slot. The slots' window is
        // long enough not to shorten the step (a step is at most a twelfth of it with three contenders).
        var a = Contender("node-a", new Sessions(sessionA), runs: runsA, view: view, rankDelay: TimeSpan.FromSeconds(9));
        var b = Contender("node-b", new Sessions(sessionB), runs: runsB, view: view, rankDelay: TimeSpan.FromSeconds(9));
        var definition = ContenderRig.DefinitionOf(task, new ScheduledTaskSpec
        {
            Every = "10s",
            Shell = $"echo \"$DTASK_SLOT $DTASK_NODE\" >> '{Witness}'; if [ \"$DTASK_SLOT\" = {Slot} ]; then sleep 300; fi",
            ConcurrencyPolicy = ConcurrencyPolicy.Replace,
            Placement = Placement.RoundRobin,
        });
        using var watching = new CancellationTokenSource();
        var watcher = StopOnRequestAsync(task, [runsA, runsB], watching.Token);
        try
        {
            // node-a runs the first slot alone, and is still running it when the next one is due.
            var first = a.ContendAsync(definition, Ticket(Slot), Ct);
            await DriveAsync(Task.Run(async () =>
            {
                while (!File.Exists(Witness))
                {
                    await Task.Delay(10, Ct);
                }
            }, Ct));

            for (var slot = Slot + 10; slot <= Slot + 30; slot += 10)
            {
                time.SetUtcNow(DateTimeOffset.FromUnixTimeSeconds(slot));
                var ticket = new SlotTicket(slot, DateTimeOffset.FromUnixTimeSeconds(slot), DateTimeOffset.FromUnixTimeSeconds(slot + 120));
                await DriveAsync(Task.WhenAll(a.ContendAsync(definition, ticket, Ct), b.ContendAsync(definition, ticket, Ct)));
            }

            await first.WaitAsync(TimeSpan.FromSeconds(30), Ct);

            // The running slot was node-a's turn: node-b takes the next (and stops it), then they alternate.
            Assert.Equal([$"{Slot} node-a", $"{Slot + 10} node-b", $"{Slot + 20} node-a", $"{Slot + 30} node-b"], await File.ReadAllLinesAsync(Witness, Ct));
        }
        finally
        {
            await watching.CancelAsync();
            await watcher;
        }
    }

    /// <summary>The holders' control watch: a stop request for the running run stops its child wherever it runs.</summary>
    private async Task StopOnRequestAsync(TaskId task, RunningRuns[] holders, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            if ((await ledger.ReadRunAsync(task, CancellationToken.None)).Record is { IsRunning: true } run
                && await ledger.HasStopRequestAsync(task, run.RunId, CancellationToken.None))
            {
                foreach (var holder in holders)
                {
                    holder.TryStop(task, run.RunId, StopReason.Replaced);
                }
            }

            try
            {
                await Task.Delay(10, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    [Fact]
    public async Task In_a_fleet_of_twelve_a_slot_costs_the_stale_reads_of_the_contenders_and_watchers_only_and_runs_once()
    {
        var (order, view) = Fleet(12);
        var reads = 0;
        var contenders = order.Select(node => Contender(node, new Sessions(ledger.OpenSession()), ledger: Counting(() => Interlocked.Increment(ref reads)), view: view)).ToList();
        var definition = Definition($"echo \"$DTASK_SLOT $DTASK_NODE\" >> '{Witness}'");

        await DriveAsync(Task.WhenAll(contenders.Select(c => c.ContendAsync(definition, Ticket(Slot), Ct))));

        Assert.Equal([$"{Slot} {order[0]}"], await File.ReadAllLinesAsync(Witness, Ct));
        var k = ExecutorOptions.DefaultContenders;
        Assert.InRange(reads, 1, k - 1 + SlotTurn.Watchers(k));
    }

    [Fact]
    public async Task A_fleet_woken_late_for_a_slot_keeps_its_rank_order_so_only_the_first_ranked_node_claims()
    {
        // A loaded machine (or a paused process) wakes every contender 2 s after the fire time, all at once: the lowest
        // ranks start first here. Each still waits its turn after it woke, so the first-ranked node claims alone and the
        // others see the claim with one stale read each: no claim transaction of theirs, no consistent read.
        var (order, view) = Fleet(12);
        int reads = 0, claims = 0;
        var tap = LedgerTap.Over(ledger);
        tap.Before = method =>
        {
            if (method == nameof(ITaskLedger.PeekRunAsync))
            {
                Interlocked.Increment(ref reads);
            }
            else if (method == nameof(ITaskLedger.ClaimAsync))
            {
                Interlocked.Increment(ref claims);
            }
        };
        var contenders = order.Reverse().Select(node => Contender(node, new Sessions(ledger.OpenSession()), ledger: (ITaskLedger)(object)tap, view: view)).ToList();
        var definition = Definition($"echo \"$DTASK_SLOT $DTASK_NODE\" >> '{Witness}'");
        time.SetUtcNow(DateTimeOffset.FromUnixTimeSeconds(Slot) + TimeSpan.FromSeconds(2));

        await DriveAsync(Task.WhenAll(contenders.Select(c => c.ContendAsync(definition, Ticket(Slot), Ct))));

        Assert.Equal([$"{Slot} {order[0]}"], await File.ReadAllLinesAsync(Witness, Ct));
        Assert.Equal(1, claims);
        var k = ExecutorOptions.DefaultContenders;
        Assert.InRange(reads, 1, k - 1 + SlotTurn.Watchers(k));
    }

    [Fact]
    public async Task When_the_first_K_ranked_nodes_are_dead_but_still_registered_a_watcher_runs_the_slot_one_step_later()
    {
        var (order, view) = Fleet(12);
        var k = ExecutorOptions.DefaultContenders;
        var claimedAt = new List<DateTimeOffset>();
        var tap = LedgerTap.Over(ledger);
        tap.Before = method =>
        {
            if (method == nameof(ITaskLedger.ClaimAsync))
            {
                lock (claimedAt)
                {
                    claimedAt.Add(time.GetUtcNow());
                }
            }
        };
        var live = order.Skip(k).Select(node => Contender(node, new Sessions(ledger.OpenSession()), ledger: (ITaskLedger)(object)tap, view: view)).ToList();
        var definition = Definition($"echo \"$DTASK_SLOT $DTASK_NODE\" >> '{Witness}'");

        await DriveAsync(Task.WhenAll(live.Select(c => c.ContendAsync(definition, Ticket(Slot), Ct))));

        Assert.Equal([$"{Slot} {order[k]}"], await File.ReadAllLinesAsync(Witness, Ct));
        Assert.Equal(RunState.Succeeded, Assert.Single(await ledger.ReadHistoryAsync(task, Ct)).State);
        // Claimed at the first watcher's turn: K steps of 100 ms after the fire time (the fake clock moves in 20 ms steps).
        Assert.InRange(claimedAt.Min() - DateTimeOffset.FromUnixTimeSeconds(Slot), TimeSpan.FromMilliseconds(100 * k), TimeSpan.FromMilliseconds((100 * k) + 100));
    }

    [Fact]
    public async Task When_the_contenders_and_watchers_leave_the_fleet_before_their_turn_the_next_live_rank_runs_the_slot()
    {
        var (order, view) = Fleet(12);
        var gone = ExecutorOptions.DefaultContenders + SlotTurn.Watchers(ExecutorOptions.DefaultContenders);
        var rest = order.Skip(gone).Select(node => Contender(node, new Sessions(ledger.OpenSession()), view: view)).ToList();
        var definition = Definition($"echo \"$DTASK_SLOT $DTASK_NODE\" >> '{Witness}'");

        var contending = Task.WhenAll(rest.Select(c => c.ContendAsync(definition, Ticket(Slot), Ct)));
        // Ranked, waiting for their turns: the registrations of the first ranks expire.
        await Task.Delay(50, Ct);
        view.SetNodes([.. view.Nodes.Where(n => !order.Take(gone).Contains(n.Node))]);
        await DriveAsync(contending);

        var line = Assert.Single(await File.ReadAllLinesAsync(Witness, Ct));
        Assert.StartsWith($"{Slot} ", line, StringComparison.Ordinal);
        Assert.Contains(line[(line.IndexOf(' ', StringComparison.Ordinal) + 1)..], order.Skip(gone));
    }

    [Fact]
    public async Task Registrations_without_a_clock_stamp_do_not_count_as_watchers_so_a_live_node_ranked_after_them_backs_the_slot_up()
    {
        var (order, view) = Fleet(12);
        var ghosts = order.Take(order.Count - 1).ToHashSet(StringComparer.Ordinal);
        view.SetNodes([.. view.Nodes.Select(n => ghosts.Contains(n.Node) ? n with { Clock = null } : n)]);
        var last = Contender(order[^1], new Sessions(ledger.OpenSession()), view: view);
        var definition = Definition($"echo \"$DTASK_SLOT $DTASK_NODE\" >> '{Witness}'");

        await DriveAsync(last.ContendAsync(definition, Ticket(Slot), Ct));

        Assert.Equal([$"{Slot} {order[^1]}"], await File.ReadAllLinesAsync(Witness, Ct));
    }

    /// <summary>A view of <paramref name="count"/> registered nodes with fresh clock stamps, and their order for <see cref="Slot"/>.</summary>
    private (IReadOnlyList<string> Order, ClusterView View) Fleet(int count)
    {
        var names = Enumerable.Range(0, count).Select(i => $"node-{i:00}").ToList();
        var view = new ClusterView();
        view.SetNodes([.. names.Select(n => Node(n) with { Clock = time.GetUtcNow() })]);
        return (SlotRanking.ByHash(task, Slot, names), view);
    }

    /// <summary>The ledger, counting its stale reads of run records (the backstops' look).</summary>
    private ITaskLedger Counting(Action onPeek)
    {
        var tap = LedgerTap.Over(ledger);
        tap.Before = method =>
        {
            if (method == nameof(ITaskLedger.PeekRunAsync))
            {
                onPeek();
            }
        };
        return (ITaskLedger)(object)tap;
    }

    public void Dispose() => directory.Dispose();

    private static SlotTicket Ticket(long slot) => new(slot, DateTimeOffset.FromUnixTimeSeconds(slot), DateTimeOffset.FromUnixTimeSeconds(slot) + Window);

    private ClockSkewGuard Guard(string node) => new(ExecutorOptions.DefaultSkewLimit, time, Logger.None, node);

    private static NodeRecord Node(string name) => new() { Node = name, Version = "test", StartedAt = DateTimeOffset.UnixEpoch };

    private SlotContender Contender(string node, IClaimSessions sessions, ClockSkewGuard? guard = null, RunningRuns? runs = null, ITaskLedger? ledger = null,
        TimeProvider? clock = null, ClusterView? view = null, TimeSpan? rankDelay = null) =>
        new(ledger ?? this.ledger, sessions, view ?? new ClusterView(), guard ?? Guard(node), runs ?? new RunningRuns(), events,
            new ExecutorOptions { Node = node, RankDelay = rankDelay ?? TimeSpan.FromMilliseconds(100), MarkerGuardWait = TimeSpan.FromSeconds(2) },
            new ChildRunner(new ChildRunnerOptions { TerminationGrace = TimeSpan.FromSeconds(2) }), new FiringStats(), clock ?? time, Logger.None);

    private TaskDefinition Definition(string shell, ConcurrencyPolicy policy = ConcurrencyPolicy.Forbid, int? history = null) =>
        ContenderRig.DefinitionOf(task, new ScheduledTaskSpec { Every = "10s", Shell = shell, ConcurrencyPolicy = policy, History = history });

    /// <summary>Moves the fake clock on in small steps while <paramref name="work"/> runs (its children run in real time).</summary>
    private async Task DriveAsync(Task work)
    {
        var elapsed = System.Diagnostics.Stopwatch.StartNew();
        while (!work.IsCompleted)
        {
            Assert.True(elapsed.Elapsed < TimeSpan.FromSeconds(60), "the contender did not finish within 60 s of real time");
            time.Advance(TimeSpan.FromMilliseconds(20));
            await Task.Delay(2, Ct);
        }

        await work;
    }

    private async Task DriveUntilCancelledAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            time.Advance(TimeSpan.FromMilliseconds(20));
            try
            {
                await Task.Delay(2, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>A node's clock: the fake clock's monotonic time and timers, its wall time off by what the test jumped.</summary>
    private sealed class JumpingClock(FakeTimeProvider inner) : TimeProvider
    {
        private long offsetTicks;

        public void Jump(TimeSpan by) => Interlocked.Add(ref offsetTicks, by.Ticks);

        public override DateTimeOffset GetUtcNow() => inner.GetUtcNow() + TimeSpan.FromTicks(Interlocked.Read(ref offsetTicks));

        public override long GetTimestamp() => inner.GetTimestamp();

        public override long TimestampFrequency => inner.TimestampFrequency;

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
            inner.CreateTimer(callback, state, dueTime, period);
    }

    private sealed class Sessions(ILedgerSession? session) : IClaimSessions
    {
        public ILedgerSession? ClaimSession => session;
    }

    /// <summary>A ledger that calls <see cref="Before"/> with each method's name before passing the call on; it may throw.</summary>
    public class LedgerTap : DispatchProxy
    {
        private ITaskLedger inner = null!;

        public Action<string>? Before { get; set; }

        public static LedgerTap Over(ITaskLedger ledger)
        {
            var proxy = Create<ITaskLedger, LedgerTap>();
            var tap = (LedgerTap)(object)proxy;
            tap.inner = ledger;
            return tap;
        }

        protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
        {
            ArgumentNullException.ThrowIfNull(targetMethod);
            Before?.Invoke(targetMethod.Name);
            try
            {
                return targetMethod.Invoke(inner, args);
            }
            catch (TargetInvocationException e) when (e.InnerException is not null)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e.InnerException);
                throw;
            }
        }
    }
}
