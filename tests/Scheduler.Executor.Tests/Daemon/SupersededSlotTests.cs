using System.Collections.Concurrent;
using Dtask.Core.Model;
using Dtask.Core.Scheduling;
using Dtask.Core.State;
using Dtask.Executor.Claims;
using Dtask.Executor.Daemon;
using Dtask.Executor.Ledger;
using Dtask.Executor.Tests.Claims;
using Dtask.Executor.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace Dtask.Executor.Tests.Daemon;

/// <summary>
/// Slots at or before the task's last handled slot (the run record's, read consistently) are never marked: a node that
/// plans from a stale last slot (not selected for a long time, or paused longer than history × period) while the task ran
/// elsewhere and its history was trimmed records nothing <c>missed</c> and notifies nothing.
/// </summary>
public sealed class SupersededSlotTests(ConsulFixture consul)
{
    private const long Base = 1_900_000_020; // A multiple of 60: slot i of an "every: 60s" task is Base + 60·i.

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static long Slot(int i) => Base + (60 * i);

    private static TaskDefinition Definition(TaskId task, ulong index, IReadOnlyDictionary<string, string>? selector = null, int history = 3)
    {
        var spec = new ScheduledTaskSpec { Every = "60s", Shell = "true", History = history, NodeSelector = selector };
        return new TaskDefinition(task, spec, TaskSchedule.Create(spec.ToScheduleSpec(task.ToString())), index);
    }

    /// <summary>Another node runs slots 1 to 10 (history 3: the entries of slots 1 to 7 are trimmed).</summary>
    private static async Task RunElsewhereAsync(ClaimWorld world)
    {
        var elsewhere = await world.ExecutorAsync("elsewhere");
        for (var i = 1; i <= 10; i++)
        {
            var ran = await elsewhere.Firing.FireAsync(world.Request(Slot(i), "true") with { HistoryLimit = 3 }, cancellationToken: Ct);
            Assert.Equal(RunState.Succeeded, ran.Record!.State);
        }

        Assert.Null(await world.HistoryAsync(Slot(5)));
    }

    [Fact]
    public async Task The_marker_writes_nothing_for_a_slot_before_the_run_records_slot()
    {
        await using var world = new ClaimWorld(consul);
        await RunElsewhereAsync(world);

        var marked = await new SlotMarker(world.Store).RecordMissedAsync(world.Task, Slot(5), "stale", "not-fired-in-time", 3, Ct);

        Assert.Equal(MarkStatus.Superseded, marked);
        Assert.Null(await world.HistoryAsync(Slot(5)));
        Assert.Equal(Slot(10), (await world.Store.ReadRunAsync(world.Task, Ct)).Record!.Slot);
    }

    [Fact]
    public async Task A_slot_inside_the_window_history_keeps_that_never_ran_is_recorded_missed_though_a_later_slot_was_claimed()
    {
        await using var world = new ClaimWorld(consul);
        var elsewhere = await world.ExecutorAsync("elsewhere");
        foreach (var i in new[] { 1, 2, 3, 4, 6 })
        {
            var ran = await elsewhere.Firing.FireAsync(world.Request(Slot(i), "true") with { HistoryLimit = 3 }, cancellationToken: Ct);
            Assert.Equal(RunState.Succeeded, ran.Record!.State);
        }

        // Kept: slots 3, 4 and 6. Slot 5 never ran (e.g. Consul failed over through it) and slot 6 was claimed first: it is
        // after the oldest kept entry, so its missing entry means it never ran, and it is recorded; slot 2 was trimmed.
        var marker = new SlotMarker(world.Store);
        Assert.Equal(MarkStatus.Written, await marker.RecordMissedAsync(world.Task, Slot(5), "late", "not-claimed-before-deadline", 3, Ct));
        Assert.Equal(RunState.Missed, (await world.HistoryAsync(Slot(5)))!.State);
        Assert.Equal(MarkStatus.Superseded, await marker.RecordMissedAsync(world.Task, Slot(2), "late", "not-fired-in-time", 3, Ct));
        Assert.Null(await world.HistoryAsync(Slot(2)));
        Assert.Equal(Slot(6), (await world.Store.ReadRunAsync(world.Task, Ct)).Record!.Slot);
    }

    [Fact]
    public async Task A_node_selected_again_after_slots_ran_elsewhere_records_none_of_them_missed()
    {
        await using var world = new ClaimWorld(consul);
        await using var rig = await ContenderRig.StartAsync(consul, world, "returning");
        var time = new FakeTimeProvider(DateTimeOffset.FromUnixTimeSeconds(Slot(0) - 1));
        await using var loop = new LoopRig(world, rig, time, Definition(world.Task, 1));
        time.SetUtcNow(DateTimeOffset.FromUnixTimeSeconds(Slot(0)));

        // Selected: it runs slot 0 itself. Then the task stops selecting it, and slots 1 to 10 run elsewhere.
        await loop.RanAsync(Slot(0));
        loop.Loop.Update(Definition(world.Task, 2, new Dictionary<string, string> { ["pool"] = "other" }));
        await RunElsewhereAsync(world);

        // Selected again, well after slot 10: slot 11 runs here, and nothing before it is recorded.
        time.SetUtcNow(DateTimeOffset.FromUnixTimeSeconds(Slot(10) + 30));
        loop.Loop.Update(Definition(world.Task, 3));
        time.SetUtcNow(DateTimeOffset.FromUnixTimeSeconds(Slot(11)));
        await loop.RanAsync(Slot(11));

        await loop.SettledAsync();
        Assert.DoesNotContain(await world.Store.ReadHistoryAsync(world.Task, Ct), r => r.State == RunState.Missed);
        Assert.DoesNotContain(rig.Events.Events, e => e.StartsWith("missed", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_loop_that_wakes_long_after_it_asked_reads_the_run_record_and_records_none_of_the_slots_run_meanwhile_missed()
    {
        await using var world = new ClaimWorld(consul);
        await using var rig = await ContenderRig.StartAsync(consul, world, "paused");
        var time = new FakeTimeProvider(DateTimeOffset.FromUnixTimeSeconds(Slot(0) - 1));
        await using var loop = new LoopRig(world, rig, time, Definition(world.Task, 1));
        time.SetUtcNow(DateTimeOffset.FromUnixTimeSeconds(Slot(0)));
        await loop.RanAsync(Slot(0));

        // The loop sleeps until slot 1; it wakes ten minutes later (the process was stopped), while slots 1 to 10 ran elsewhere.
        await RunElsewhereAsync(world);
        time.SetUtcNow(DateTimeOffset.FromUnixTimeSeconds(Slot(10) + 30));
        time.SetUtcNow(DateTimeOffset.FromUnixTimeSeconds(Slot(11)));
        await loop.RanAsync(Slot(11));

        await loop.SettledAsync();
        Assert.DoesNotContain(await world.Store.ReadHistoryAsync(world.Task, Ct), r => r.State == RunState.Missed);
        Assert.DoesNotContain(rig.Events.Events, e => e.StartsWith("missed", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Slots_a_claim_passed_over_whose_claimer_died_before_it_looked_are_recorded_missed_by_the_next_claimer()
    {
        await using var world = new ClaimWorld(consul);
        // Slots 1 to 3 ran elsewhere; then slot 6 was claimed there, by a claimer that did not get to look at slots 4 and 5
        // (its contenders gave up or died without recording them): its record still says where the unlooked slots begin.
        var elsewhere = await world.ExecutorAsync("elsewhere");
        foreach (var i in new[] { 1, 2, 3, 6 })
        {
            var ran = await elsewhere.Firing.FireAsync(world.Request(Slot(i), "true") with { HistoryLimit = 10 }, cancellationToken: Ct);
            Assert.Equal(RunState.Succeeded, ran.Record!.State);
        }

        Assert.NotNull((await world.Store.ReadRunAsync(world.Task, Ct)).Record!.PreviousSlot);
        Assert.Null(await world.HistoryAsync(Slot(4)));

        await using var rig = await ContenderRig.StartAsync(consul, world, "next");
        var time = new FakeTimeProvider(DateTimeOffset.FromUnixTimeSeconds(Slot(7) - 1));
        await using var loop = new LoopRig(world, rig, time, Definition(world.Task, 1, history: 10));
        time.SetUtcNow(DateTimeOffset.FromUnixTimeSeconds(Slot(7)));
        await loop.RanAsync(Slot(7));
        await loop.SettledAsync();

        // The next claimer looked: slots 4 and 5 are recorded missed, passed over; the slots that ran keep their records,
        // and its own record says it looked.
        foreach (var i in new[] { 4, 5 })
        {
            var marker = await world.HistoryAsync(Slot(i));
            Assert.Equal((RunState.Missed, RunReasons.PassedOver, "next"), (marker?.State, marker?.Reason, marker?.Node));
        }

        Assert.Equal(RunState.Succeeded, (await world.HistoryAsync(Slot(6)))!.State);
        var run = (await world.Store.ReadRunAsync(world.Task, Ct)).Record!;
        Assert.Equal((Slot(7), RunState.Succeeded, (long?)null), (run.Slot, run.State, run.PreviousSlot));
        Assert.Equal(2, rig.Events.Events.Count(e => e.StartsWith("missed", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task A_slot_planned_while_this_clock_was_an_hour_ahead_is_not_recorded_missed_once_the_clock_is_back()
    {
        // The clock reads an hour ahead when the marking begins, and is set back before anything is written (in chaos runs
        // the rank wait and a RoundRobin task's history read lasted past the set-back).
        await using var world = new ClaimWorld(consul);
        await using var rig = await ContenderRig.StartAsync(consul, world, "set-back");
        var ahead = (DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 3600) / 60 * 60;
        var contender = rig.ContenderOn(new AheadAtFirstRead(TimeSpan.FromHours(1)));

        await contender.RecordMissedAsync(rig.Definition, [ahead], RunReasons.NotClaimedBeforeDeadline, Ct);

        Assert.Null(await world.HistoryAsync(ahead));
        Assert.Null((await world.Store.ReadRunAsync(world.Task, Ct)).Record);
        Assert.Contains("this clock was set back and the slot is not due yet", rig.Log.AllText(), StringComparison.Ordinal);
    }

    /// <summary>The system clock, read <paramref name="ahead"/> ahead the first time only (then set back).</summary>
    private sealed class AheadAtFirstRead(TimeSpan ahead) : TimeProvider
    {
        private int reads;

        public override DateTimeOffset GetUtcNow() => System.GetUtcNow() + (Interlocked.Increment(ref reads) == 1 ? ahead : TimeSpan.Zero);
    }

    /// <summary>A <see cref="TaskLoop"/> of the rig's node on a fake clock; what it starts in the background is kept to be awaited.</summary>
    private sealed class LoopRig : IAsyncDisposable
    {
        private readonly ContenderRig rig;
        private readonly ConsulTaskLedger records;
        private readonly ConcurrentQueue<Task> started = new();
        private readonly CancellationTokenSource claiming = new();

        public LoopRig(ClaimWorld world, ContenderRig rig, TimeProvider time, TaskDefinition definition)
        {
            this.rig = rig;
            records = new ConsulTaskLedger(world.Store.Client, world.Layout, time);
            Loop = new TaskLoop(definition, rig.ContenderOn(time), records, rig.Options, time, rig.Log.CreateLogger(), started.Enqueue, claiming.Token);
        }

        public TaskLoop Loop { get; }

        /// <summary>Waits until this node has run <paramref name="slot"/> to its end.</summary>
        public async Task RanAsync(long slot) =>
            Assert.True(await Eventually.TrueAsync(() => rig.Events.Events.Any(e => e.StartsWith($"finished {slot} ", StringComparison.Ordinal)), TimeSpan.FromSeconds(20)),
                $"slot {slot} did not run; events: {string.Join(", ", rig.Events.Events)}");

        /// <summary>Waits for everything the loop started (fires, missed markers) to end.</summary>
        public Task SettledAsync() => Task.WhenAll(started).WaitAsync(TimeSpan.FromSeconds(20), Ct);

        public async ValueTask DisposeAsync()
        {
            await Loop.DisposeAsync();
            await claiming.CancelAsync();
            await Task.WhenAll(started).WaitAsync(TimeSpan.FromSeconds(20), CancellationToken.None);
            await records.DisposeAsync();
            claiming.Dispose();
        }
    }
}
