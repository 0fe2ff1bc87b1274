using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Dtask.Consul.Kv;
using Dtask.Core.Model;
using Dtask.Core.Scheduling;
using Dtask.Core.State;
using Dtask.Executor.Claims;
using Dtask.Executor.Tests.Cli;
using Dtask.Executor.Tests.Support;

namespace Dtask.Executor.Tests.Daemon;

/// <summary>
/// Manual triggers and stop requests through <c>control/</c>, with real executors and the real <c>dtask</c>: each request
/// has its own key, a trigger is run exactly once and never moves, skips or blocks a scheduled slot, <c>Replace</c>
/// works whatever is pending, and a trigger written before the executor knows its task is run.
/// </summary>
public sealed partial class ControlTests(ConsulFixture consul)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_trigger_of_a_Replace_task_whose_long_child_runs_is_run_stops_the_child_and_misses_no_slot()
    {
        await using var world = new DaemonWorld(consul.Agent.Address, consul.NewClient());
        await world.StartFleetAsync(2);
        var task = await world.PutTaskAsync("replace", new ScheduledTaskSpec
        {
            Every = "20s", ConcurrencyPolicy = ConcurrencyPolicy.Replace, History = 50,
            Shell = $"echo \"$$ $DTASK_SLOT ${{DTASK_TRIGGER:-scheduled}}\" >> {world.PathOf("ran")}; exec sleep 300",
        });
        Assert.True(await Eventually.TrueAsync(() => world.ReadLines("ran").Length > 0, TimeSpan.FromSeconds(25)), "the first slot did not start");
        var first = world.ReadLines("ran")[0].Split(' ');

        var triggered = await DtaskAsync(world, "trigger", "ops/replace");
        Assert.Equal(0, triggered.ExitCode);
        var id = TriggerId().Match(triggered.Output).Groups[1].Value;

        // The trigger runs (stopping the long child), then the next scheduled slot comes and runs (stopping the manual run).
        Assert.True(await Eventually.TrueAsync(() => world.ReadLines("ran").Any(l => l.EndsWith(" " + id, StringComparison.Ordinal))
            && world.ReadLines("ran").SkipWhile(l => !l.EndsWith(" " + id, StringComparison.Ordinal)).Any(l => l.EndsWith(" scheduled", StringComparison.Ordinal)),
            TimeSpan.FromSeconds(30)), "the trigger, or the slot after it, did not run: " + string.Join(" | ", world.ReadLines("ran")));
        Assert.True(await Eventually.TrueAsync(() => !DaemonWorld.IsAlive(int.Parse(first[0], CultureInfo.InvariantCulture)), TimeSpan.FromSeconds(5)), "the 300 s child kept running");
        var lines = world.ReadLines("ran");
        Assert.Single(lines, l => l.EndsWith(" " + id, StringComparison.Ordinal));
        var scheduled = lines.Where(l => l.EndsWith(" scheduled", StringComparison.Ordinal)).Select(l => long.Parse(l.Split(' ')[1], CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(scheduled.Count, scheduled.Distinct().Count());
        Assert.All(scheduled.Zip(scheduled.Skip(1)), p => Assert.Equal(20, p.Second - p.First));

        var history = await world.HistoryAsync(task);
        Assert.DoesNotContain(history, r => r.State is RunState.Missed or RunState.Skipped);
        var manual = Assert.Single(history, r => r.Trigger == id);
        Assert.Contains("replaced", manual.Reason, StringComparison.Ordinal);
        Assert.Contains(history, r => r.Slot == long.Parse(first[1], CultureInfo.InvariantCulture) && r.Reason?.Contains("replaced", StringComparison.Ordinal) == true);
        Assert.Empty(await PendingAsync(world, "replace"));
    }

    [Fact]
    public async Task Two_quick_triggers_are_two_manual_runs_each_run_exactly_once()
    {
        await using var world = new DaemonWorld(consul.Agent.Address, consul.NewClient());
        await world.StartFleetAsync(3);
        var task = await world.PutTaskAsync("manual", new ScheduledTaskSpec { Schedule = "0 0 1 1 *", Shell = $"echo \"$DTASK_TRIGGER $DTASK_NODE\" >> {world.PathOf("ran")}; sleep 1" });
        Assert.True(await Eventually.TrueAsync(() => world.Executors.All(e => e.Lines.Any(l => l.Contains("ops/manual: scheduled", StringComparison.Ordinal))), TimeSpan.FromSeconds(10)));

        var triggers = await Task.WhenAll(DtaskAsync(world, "trigger", "ops/manual"), DtaskAsync(world, "trigger", "ops/manual"));

        Assert.All(triggers, t => Assert.Equal(0, t.ExitCode));
        var ids = triggers.Select(t => TriggerId().Match(t.Output).Groups[1].Value).ToList();
        Assert.NotEqual(ids[0], ids[1]);
        Assert.True(await Eventually.TrueAsync(() => world.HistoryAsync(task).GetAwaiter().GetResult().Count(r => r.State == RunState.Succeeded) == 2, TimeSpan.FromSeconds(20)),
            "the two manual runs were not both recorded");
        Assert.Equal(ids.Order(), world.ReadLines("ran").Select(l => l.Split(' ')[0]).Order());
        Assert.Equal(ids.Order(), (await world.HistoryAsync(task)).Select(r => r.Trigger!).Order());
        Assert.Empty(await PendingAsync(world, "manual"));
        var shown = await DtaskAsync(world, "history", "ops/manual");
        Assert.All(ids, id => Assert.Single(shown.Output.Split('\n'), l => l.Contains($"({id})", StringComparison.Ordinal) && l.Contains("manual #", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task A_trigger_written_before_the_executor_knows_its_task_is_run_once_the_task_appears()
    {
        await using var world = new DaemonWorld(consul.Agent.Address, consul.NewClient());
        await world.StartFleetAsync(1);
        var id = await WriteTriggerAsync(world, "late", DateTimeOffset.UtcNow);

        var task = await world.PutTaskAsync("late", new ScheduledTaskSpec { Schedule = "0 0 1 1 *", Shell = $"echo \"$DTASK_TRIGGER\" >> {world.PathOf("ran")}" });

        Assert.True(await Eventually.TrueAsync(() => world.ReadLines("ran").Length > 0, TimeSpan.FromSeconds(15)), "the trigger that came first was never run");
        Assert.Equal([id], world.ReadLines("ran"));
        Assert.True(await Eventually.TrueAsync(() => world.HistoryAsync(task).GetAwaiter().GetResult().Any(r => r.Trigger == id && r.IsFinal), TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task A_trigger_and_a_stop_request_pending_together_both_act()
    {
        await using var world = new DaemonWorld(consul.Agent.Address, consul.NewClient());
        await world.StartFleetAsync(2);
        var task = await world.PutTaskAsync("both", new ScheduledTaskSpec
        {
            Schedule = "0 0 1 1 *", ConcurrencyPolicy = ConcurrencyPolicy.Replace,
            Shell = $"echo \"$$ $DTASK_TRIGGER\" >> {world.PathOf("ran")}; exec sleep 300",
        });
        Assert.True(await Eventually.TrueAsync(() => world.Executors.All(e => e.Lines.Any(l => l.Contains("ops/both: scheduled", StringComparison.Ordinal))), TimeSpan.FromSeconds(10)));
        var holderTrigger = await WriteTriggerAsync(world, "both", DateTimeOffset.UtcNow);
        Assert.True(await Eventually.TrueAsync(() => world.ReadLines("ran").Length == 1, TimeSpan.FromSeconds(10)), "the first trigger did not run");
        var holder = (await world.RunRecordAsync(task))!;
        Assert.Equal(holderTrigger, holder.Trigger);

        // A stop request for the running manual run and a new trigger, written at once: neither overwrites the other.
        var stop = new ControlRequest { Action = ControlAction.Stop, Id = Guid.NewGuid().ToString("N"), RequestedAt = DateTimeOffset.UtcNow, RequestedBy = "test", RunId = holder.RunId };
        Assert.True((await world.Client.Kv.PutAsync(world.Layout.StopKey("ops", "both", holder.RunId), Encoding.UTF8.GetBytes(StateJson.Serialize(stop)), new KvPutOptions { Cas = 0 }, Ct)).Value);
        var next = await WriteTriggerAsync(world, "both", DateTimeOffset.UtcNow);

        Assert.True(await Eventually.TrueAsync(() => world.ReadLines("ran").Length == 2, TimeSpan.FromSeconds(15)), "the second trigger did not run");
        Assert.EndsWith(" " + next, world.ReadLines("ran")[1], StringComparison.Ordinal);
        Assert.False(DaemonWorld.IsAlive(int.Parse(world.ReadLines("ran")[0].Split(' ')[0], CultureInfo.InvariantCulture)), "the stopped run's child is alive");
        var stopped = Assert.Single(await world.HistoryAsync(task), r => r.Trigger == holderTrigger);
        Assert.Equal("stopped: replaced", stopped.Reason);
        Assert.True(await Eventually.TrueAsync(() => PendingAsync(world, "both").GetAwaiter().GetResult().Count == 0, TimeSpan.FromSeconds(5)), "a request stayed pending");
    }

    [Fact]
    public async Task A_trigger_between_a_slot_and_its_jittered_fire_time_leaves_the_slot_to_run()
    {
        await using var world = new DaemonWorld(consul.Agent.Address, consul.NewClient());
        await world.StartFleetAsync(1);
        var spec = new ScheduledTaskSpec { Every = "10s", Jitter = "9s", History = 50, Shell = $"echo \"$DTASK_SLOT ${{DTASK_TRIGGER:-scheduled}}\" >> {world.PathOf("ran")}" };
        var task = await world.PutTaskAsync("jittered", spec);
        var schedule = TaskSchedule.Create(spec.ToScheduleSpec(task.ToString()));

        // A slot whose jittered fire time is at least 6 s after it (room for a slow `dtask trigger` to start), 3 s from now or later.
        var slot = schedule.Next(DateTimeOffset.UtcNow + TimeSpan.FromSeconds(3))!.Value;
        while (schedule.FireTime(Slot.At(slot)) - slot < TimeSpan.FromSeconds(6))
        {
            slot = schedule.Next(slot)!.Value;
        }

        var id = slot.ToUnixTimeSeconds();
        Assert.True(await Eventually.TrueAsync(() => DateTimeOffset.UtcNow >= slot + TimeSpan.FromMilliseconds(500), TimeSpan.FromMinutes(3)));
        var triggered = await DtaskAsync(world, "trigger", "ops/jittered");
        Assert.True(DateTimeOffset.UtcNow < schedule.FireTime(Slot.At(slot)), "the trigger came after the slot's fire time; the test proves nothing");
        var trigger = TriggerId().Match(triggered.Output).Groups[1].Value;

        Assert.True(await Eventually.TrueAsync(() => world.ReadLines("ran").Contains($"{id} scheduled")
            && world.HistoryAsync(task).GetAwaiter().GetResult().Any(r => r.Slot == id && !r.IsManual), TimeSpan.FromSeconds(20)), "the slot did not run, or was not recorded");
        var history = await world.HistoryAsync(task);
        Assert.Equal(RunState.Succeeded, Assert.Single(history, r => r.Slot == id && !r.IsManual).State);
        Assert.Contains(history, r => r.Trigger == trigger);
        Assert.DoesNotContain(history, r => r.State == RunState.Missed);
    }

    [Fact]
    public async Task A_trigger_from_a_client_clock_an_hour_ahead_changes_nothing_about_the_scheduled_slots()
    {
        await using var world = new DaemonWorld(consul.Agent.Address, consul.NewClient());
        await world.StartFleetAsync(2);
        var task = await world.PutTaskAsync("every2", new ScheduledTaskSpec { Every = "2s", History = 100, Shell = $"echo \"$DTASK_SLOT ${{DTASK_TRIGGER:-scheduled}}\" >> {world.PathOf("ran")}" });
        Assert.True(await Eventually.TrueAsync(() => world.ReadLines("ran").Length > 0, TimeSpan.FromSeconds(10)), "the task never ran");

        var id = await WriteTriggerAsync(world, "every2", DateTimeOffset.UtcNow + TimeSpan.FromHours(1));
        var after = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

        Assert.True(await Eventually.TrueAsync(() => world.ReadLines("ran").Any(l => l.EndsWith(" " + id, StringComparison.Ordinal))
            && world.ReadLines("ran").Count(l => l.EndsWith(" scheduled", StringComparison.Ordinal) && long.Parse(l.Split(' ')[0], CultureInfo.InvariantCulture) > after) >= 3,
            TimeSpan.FromSeconds(20)), "the trigger, or the slots after it, did not run: " + string.Join(" | ", world.ReadLines("ran")));
        var history = await world.HistoryAsync(task);
        Assert.DoesNotContain(history, r => r.State is RunState.Missed or RunState.Skipped);
        var slots = world.ReadLines("ran").Where(l => l.EndsWith(" scheduled", StringComparison.Ordinal)).Select(l => long.Parse(l.Split(' ')[0], CultureInfo.InvariantCulture)).ToList();
        Assert.All(slots.Zip(slots.Skip(1)), p => Assert.Equal(2, p.Second - p.First));
        Assert.True((await world.RunRecordAsync(task))!.Slot < after + 3600 - 60, "the run record's slot moved to the client's clock");
    }

    private async Task<DtaskExit> DtaskAsync(DaemonWorld world, params string[] arguments) =>
        await DtaskProcess.RunAsync([.. arguments, "--prefix", world.Prefix, "--consul", consul.Agent.Address.ToString()]);

    /// <summary>Writes a trigger key as <c>dtask trigger</c> does (CAS 0), with the given <c>requestedAt</c>; returns its id.</summary>
    private static async Task<string> WriteTriggerAsync(DaemonWorld world, string name, DateTimeOffset requestedAt)
    {
        var id = Guid.NewGuid().ToString("N");
        var request = new ControlRequest { Action = ControlAction.Trigger, Id = id, RequestedAt = requestedAt, RequestedBy = "cli@elsewhere" };
        Assert.True((await world.Client.Kv.PutAsync(world.Layout.TriggerKey("ops", name, id), Encoding.UTF8.GetBytes(StateJson.Serialize(request)), new KvPutOptions { Cas = 0 }, Ct)).Value);
        return id;
    }

    private static async Task<IReadOnlyList<KvPair>> PendingAsync(DaemonWorld world, string name) =>
        (await world.Client.Kv.ListAsync(world.Layout.TaskControlPrefix("ops", name), cancellationToken: Ct)).Value;

    [GeneratedRegex(@"triggered \(request ([0-9a-f]{32}), #\d+\)")]
    private static partial Regex TriggerId();
}
