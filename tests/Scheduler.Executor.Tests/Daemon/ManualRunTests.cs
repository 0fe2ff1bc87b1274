using System.Text;
using Dtask.Consul.Kv;
using Dtask.Core.Manifests;
using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Executor.Claims;
using Dtask.Executor.Daemon;
using Dtask.Executor.Processes;
using Dtask.Executor.Tests.Claims;
using Dtask.Executor.Tests.Support;

namespace Dtask.Executor.Tests.Daemon;

/// <summary>
/// Manual runs through <see cref="SlotContender.ContendManualAsync"/>, against a real agent: a trigger is not a slot, so
/// it never moves the run record's slot (whatever clock its client had), is run exactly once however many nodes contend,
/// waits while the task is busy, is dropped with a reason after its life, and never keeps a scheduled slot from its policy.
/// </summary>
public sealed class ManualRunTests(ConsulFixture consul)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_trigger_from_a_clock_an_hour_ahead_runs_without_moving_the_slot_and_the_next_slot_still_runs()
    {
        await using var world = new ClaimWorld(consul);
        await using var rig = await ContenderRig.StartAsync(consul, world, "node-a");
        var witness = Path.Combine(Path.GetTempPath(), "dtask-manual-" + Guid.NewGuid().ToString("N"));
        var task = Shell(world, $"echo \"$DTASK_SLOT ${{DTASK_TRIGGER:-scheduled}}\" >> {witness}", ConcurrencyPolicy.Forbid);
        var previous = await world.ExecutorAsync("previous");
        var slot = ClaimWorld.Slot(1);
        Assert.Equal(RunState.Succeeded, (await previous.Firing.FireAsync(world.Request(slot, "true"), cancellationToken: Ct)).Record!.State);

        // The client's clock is an hour ahead: its requestedAt says so; nothing may take it as a slot.
        var trigger = await WriteTriggerAsync(world, DateTimeOffset.UtcNow + TimeSpan.FromHours(1));
        await rig.Contender.ContendManualAsync(task, trigger, Ct);

        var record = (await world.Store.ReadRunAsync(world.Task, Ct)).Record!;
        Assert.Equal((slot, trigger.Id, RunState.Succeeded), (record.Slot, record.Trigger, record.State));
        var manual = await ManualHistoryAsync(world, trigger);
        Assert.Equal((RunState.Succeeded, trigger.Id), (manual!.State, manual.Trigger));
        Assert.Null((await world.Client.Kv.GetAsync(trigger.Key, cancellationToken: Ct)).Value);
        Assert.Null(await world.HistoryAsync(slot + 3600));
        var line = Assert.Single(File.ReadAllLines(witness));
        Assert.EndsWith(" " + trigger.Id, line, StringComparison.Ordinal);
        Assert.InRange(long.Parse(line.Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture),
            DateTimeOffset.UtcNow.ToUnixTimeSeconds() - 60, DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 1);

        // The next scheduled slot is claimed and run as if no trigger had come.
        await rig.Contender.ContendAsync(task, ContenderRig.TicketNow(slot + 60, TimeSpan.FromSeconds(10)), Ct);
        Assert.Equal(RunState.Succeeded, (await world.HistoryAsync(slot + 60))!.State);
        Assert.Equal([$"{slot + 60} scheduled"], File.ReadAllLines(witness).Skip(1));
        File.Delete(witness);
    }

    [Fact]
    public async Task Two_nodes_contending_for_one_trigger_run_it_exactly_once()
    {
        await using var world = new ClaimWorld(consul);
        await using var a = await ContenderRig.StartAsync(consul, world, "node-a");
        await using var b = await ContenderRig.StartAsync(consul, world, "node-b");
        a.SeeNodes("node-b");
        b.SeeNodes("node-a");
        var witness = Path.Combine(Path.GetTempPath(), "dtask-manual-" + Guid.NewGuid().ToString("N"));
        var task = Shell(world, $"echo \"$DTASK_NODE $DTASK_TRIGGER\" >> {witness}", ConcurrencyPolicy.Forbid);
        var trigger = await WriteTriggerAsync(world, DateTimeOffset.UtcNow);

        await Task.WhenAll(a.Contender.ContendManualAsync(task, trigger, Ct), b.Contender.ContendManualAsync(task, trigger, Ct));

        var line = Assert.Single(File.ReadAllLines(witness));
        Assert.EndsWith(" " + trigger.Id, line, StringComparison.Ordinal);
        Assert.Equal(RunState.Succeeded, (await ManualHistoryAsync(world, trigger))!.State);
        File.Delete(witness);
    }

    [Fact]
    public async Task A_slot_due_while_a_manual_run_holds_the_lock_is_skipped_under_Forbid_and_the_trigger_waits_for_a_busy_task()
    {
        await using var world = new ClaimWorld(consul);
        await using var rig = await ContenderRig.StartAsync(consul, world, "node-a");
        var witness = Path.Combine(Path.GetTempPath(), "dtask-manual-" + Guid.NewGuid().ToString("N"));
        var task = Shell(world, $"echo \"${{DTASK_TRIGGER:-$DTASK_SLOT}}\" >> {witness}; sleep 2", ConcurrencyPolicy.Forbid);
        var holder = await world.ExecutorAsync("holder");
        var slot = ClaimWorld.Slot(1);

        // A scheduled run holds the lock: the trigger waits for it (it is not skipped), then runs.
        var scheduled = holder.Firing.FireAsync(world.Request(slot, "sleep 2"), cancellationToken: Ct);
        Assert.True(await Eventually.TrueAsync(() => world.Store.ReadRunAsync(world.Task, Ct).GetAwaiter().GetResult().Record is { IsRunning: true }, TimeSpan.FromSeconds(5)));
        var trigger = await WriteTriggerAsync(world, DateTimeOffset.UtcNow);
        var manual = rig.Contender.ContendManualAsync(task, trigger, Ct);
        Assert.Equal(RunState.Succeeded, (await scheduled).Record!.State);

        // Then the manual run holds the lock: the next slot applies Forbid to it, exactly as to a scheduled run.
        Assert.True(await Eventually.TrueAsync(() => File.Exists(witness), TimeSpan.FromSeconds(10)), "the waiting trigger did not run");
        await rig.Contender.ContendAsync(task, ContenderRig.TicketNow(slot + 60, TimeSpan.FromSeconds(1)), Ct);
        var skipped = await world.HistoryAsync(slot + 60);
        Assert.Equal((RunState.Skipped, "still-running"), (skipped!.State, skipped.Reason));
        await manual;
        Assert.Equal(RunState.Succeeded, (await ManualHistoryAsync(world, trigger))!.State);
        Assert.Equal([trigger.Id], File.ReadAllLines(witness));
        Assert.Equal(slot, (await world.Store.ReadRunAsync(world.Task, Ct)).Record!.Slot);
        File.Delete(witness);
    }

    [Fact]
    public async Task A_trigger_that_waits_longer_than_its_life_is_recorded_dropped_and_removed()
    {
        await using var world = new ClaimWorld(consul);
        await using var rig = await ContenderRig.StartAsync(consul, world, "node-a", triggerLife: TimeSpan.FromSeconds(1));
        var task = Shell(world, "true", ConcurrencyPolicy.Forbid);
        var holder = await world.ExecutorAsync("holder");
        var scheduled = holder.Firing.FireAsync(world.Request(ClaimWorld.Slot(1), "sleep 4"), cancellationToken: Ct);
        Assert.True(await Eventually.TrueAsync(() => world.Store.ReadRunAsync(world.Task, Ct).GetAwaiter().GetResult().Record is { IsRunning: true }, TimeSpan.FromSeconds(5)));
        var trigger = await WriteTriggerAsync(world, DateTimeOffset.UtcNow);

        await rig.Contender.ContendManualAsync(task, trigger, Ct);

        var dropped = await ManualHistoryAsync(world, trigger);
        Assert.Equal(RunState.Skipped, dropped!.State);
        Assert.StartsWith("trigger-expired", dropped.Reason, StringComparison.Ordinal);
        Assert.Null((await world.Client.Kv.GetAsync(trigger.Key, cancellationToken: Ct)).Value);
        Assert.True((await world.Store.ReadRunAsync(world.Task, Ct)).Record!.IsRunning, "the scheduled run was disturbed");
        await scheduled;
    }

    [Fact]
    public async Task A_wall_clock_that_jumps_an_hour_ahead_does_not_expire_a_waiting_trigger()
    {
        await using var world = new ClaimWorld(consul);
        await using var rig = await ContenderRig.StartAsync(consul, world, "node-a");
        var task = Shell(world, "true", ConcurrencyPolicy.Forbid);
        var holder = await world.ExecutorAsync("holder");
        var scheduled = holder.Firing.FireAsync(world.Request(ClaimWorld.Slot(1), "sleep 3"), cancellationToken: Ct);
        Assert.True(await Eventually.TrueAsync(() => world.Store.ReadRunAsync(world.Task, Ct).GetAwaiter().GetResult().Record is { IsRunning: true }, TimeSpan.FromSeconds(5)));
        var trigger = await WriteTriggerAsync(world, DateTimeOffset.UtcNow);

        // The trigger waits for the run (life 1 h); half a second in, this node's wall clock jumps two hours ahead.
        var contender = rig.ContenderOn(new JumpingClock(TimeSpan.FromHours(2), TimeSpan.FromMilliseconds(500)));
        await contender.ContendManualAsync(task, trigger, Ct).WaitAsync(TimeSpan.FromSeconds(30), Ct);

        Assert.Equal(RunState.Succeeded, (await ManualHistoryAsync(world, trigger))?.State);
        await scheduled;
    }

    /// <summary>The system clock, whose wall time jumps by <paramref name="jump"/> once <paramref name="after"/> has passed (the monotonic clock does not).</summary>
    private sealed class JumpingClock(TimeSpan jump, TimeSpan after) : TimeProvider
    {
        private readonly long start = System.GetTimestamp();

        public override DateTimeOffset GetUtcNow() => System.GetUtcNow() + (System.GetElapsedTime(start) >= after ? jump : TimeSpan.Zero);
    }

    [Fact]
    public async Task A_trigger_written_before_the_executor_knows_the_task_is_run_when_the_task_appears()
    {
        await using var world = new ClaimWorld(consul);
        await using var rig = await ContenderRig.StartAsync(consul, world, "node-a");
        var witness = Path.Combine(Path.GetTempPath(), "dtask-manual-" + Guid.NewGuid().ToString("N"));
        var trigger = await WriteTriggerAsync(world, DateTimeOffset.UtcNow);
        await using (await rig.StartDaemonAsync())
        {
            Assert.Single(rig.View.Controls);
            await PutTaskAsync(world, new ScheduledTaskSpec { Schedule = "0 0 1 1 *", Shell = $"echo \"$DTASK_TRIGGER\" >> {witness}" });

            Assert.True(await Eventually.TrueAsync(() => ManualHistoryAsync(world, trigger).GetAwaiter().GetResult() is { IsFinal: true }, TimeSpan.FromSeconds(10)),
                "the trigger that came before its task was never run");
        }

        Assert.Equal([trigger.Id], File.ReadAllLines(witness));
        Assert.Null((await world.Client.Kv.GetAsync(trigger.Key, cancellationToken: Ct)).Value);
        File.Delete(witness);
    }

    [Fact]
    public async Task Under_Replace_a_trigger_stops_the_scheduled_holder_and_a_pending_stop_and_trigger_both_act()
    {
        await using var world = new ClaimWorld(consul);
        await using var rig = await ContenderRig.StartAsync(consul, world, "node-a");
        var witness = Path.Combine(Path.GetTempPath(), "dtask-manual-" + Guid.NewGuid().ToString("N"));
        var spec = new ScheduledTaskSpec
        {
            Schedule = "0 0 1 1 *", ConcurrencyPolicy = ConcurrencyPolicy.Replace,
            Shell = $"echo \"$$ ${{DTASK_TRIGGER:-$DTASK_SLOT}}\" >> {witness}; exec sleep 300",
        };
        var task = ContenderRig.DefinitionOf(world.Task, spec);
        await using (await rig.StartDaemonAsync())
        {
            await PutTaskAsync(world, spec);

            // A scheduled slot's long child holds the lock; a trigger comes: the child is stopped (replaced), the trigger runs.
            var slot = ClaimWorld.Slot(1);
            var scheduled = rig.Contender.ContendAsync(task, ContenderRig.TicketNow(slot, TimeSpan.FromSeconds(30)), Ct);
            Assert.True(await Eventually.TrueAsync(() => File.Exists(witness) && File.ReadAllLines(witness).Length == 1, TimeSpan.FromSeconds(10)), "the slot did not start");
            var first = await WriteTriggerAsync(world, DateTimeOffset.UtcNow);
            Assert.True(await Eventually.TrueAsync(() => File.ReadAllLines(witness).Length == 2, TimeSpan.FromSeconds(10)), "the trigger did not run");
            await scheduled;
            Assert.Equal("stopped: replaced", (await world.HistoryAsync(slot))!.Reason);
            var holder = (await world.Store.ReadRunAsync(world.Task, Ct)).Record!;
            Assert.Equal((first.Id, slot), (holder.Trigger, holder.Slot));

            // A stop request for the manual run and a second trigger, pending together: the run stops, the trigger runs.
            var stop = new ControlRequest { Action = ControlAction.Stop, Id = "s", RequestedAt = DateTimeOffset.UtcNow, RunId = holder.RunId };
            Assert.True((await world.Client.Kv.PutAsync(world.Layout.StopKey(world.Task.Namespace, world.Task.Name, holder.RunId),
                Encoding.UTF8.GetBytes(StateJson.Serialize(stop)), new KvPutOptions { Cas = 0 }, Ct)).Value);
            var second = await WriteTriggerAsync(world, DateTimeOffset.UtcNow);
            Assert.True(await Eventually.TrueAsync(() => File.ReadAllLines(witness).Length == 3, TimeSpan.FromSeconds(10)), "the second trigger did not run");
            Assert.Equal("stopped: replaced", (await ManualHistoryAsync(world, first))!.Reason);
            Assert.EndsWith(" " + second.Id, File.ReadAllLines(witness)[2], StringComparison.Ordinal);

            // The next scheduled slot applies Replace to the manual run and runs; nothing is missed.
            var next = rig.Contender.ContendAsync(task, ContenderRig.TicketNow(slot + 60, TimeSpan.FromSeconds(30)), Ct);
            Assert.True(await Eventually.TrueAsync(() => File.ReadAllLines(witness).Length == 4, TimeSpan.FromSeconds(10)), "the next slot did not run");
            Assert.EndsWith($" {slot + 60}", File.ReadAllLines(witness)[3], StringComparison.Ordinal);
            Assert.True(await Eventually.TrueAsync(() => ManualHistoryAsync(world, second).GetAwaiter().GetResult() is { Reason: "stopped: replaced" }, TimeSpan.FromSeconds(5)));
            Assert.Equal(slot + 60, (await world.Store.ReadRunAsync(world.Task, Ct)).Record!.Slot);
            var pids = File.ReadAllLines(witness).Take(3).Select(l => int.Parse(l.Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture));
            Assert.All(pids, pid => Assert.False(DaemonWorld.IsAlive(pid), $"child {pid} was not stopped"));
            rig.Runs.StopAll(StopReason.Shutdown());
            await next;
        }

        File.Delete(witness);
    }

    [Fact]
    public async Task Manual_runs_are_trimmed_to_the_history_limit_apart_from_the_slots()
    {
        await using var world = new ClaimWorld(consul);
        await using var rig = await ContenderRig.StartAsync(consul, world, "node-a");
        var task = ContenderRig.DefinitionOf(world.Task, new ScheduledTaskSpec { Every = "1h", Shell = "true", History = 2 });
        var slot = ClaimWorld.Slot(1);
        var scheduled = await world.ExecutorAsync("scheduled");
        foreach (var s in new[] { slot, slot + 60 })
        {
            Assert.Equal(RunState.Succeeded, (await scheduled.Firing.FireAsync(world.Request(s, "true") with { HistoryLimit = 2 }, cancellationToken: Ct)).Record!.State);
        }

        var triggers = new List<ManualTrigger>();
        for (var i = 0; i < 3; i++)
        {
            triggers.Add(await WriteTriggerAsync(world, DateTimeOffset.UtcNow));
            await rig.Contender.ContendManualAsync(task, triggers[^1], Ct);
        }

        var manual = (await world.Client.Kv.KeysAsync(world.Layout.ManualHistoryPrefix(world.Task.Namespace, world.Task.Name), cancellationToken: Ct)).Value;
        Assert.Equal(triggers.Skip(1).Select(t => world.Layout.ManualHistoryKey(world.Task.Namespace, world.Task.Name, t.Sequence)), manual.Order(StringComparer.Ordinal));
        Assert.Equal([slot, slot + 60], await world.Store.HistorySlotsAsync(world.Task, Ct));
        Assert.Equal(slot + 60, (await world.Store.ReadRunAsync(world.Task, Ct)).Record!.Slot);
    }

    private static async Task PutTaskAsync(ClaimWorld world, ScheduledTaskSpec spec)
    {
        var manifest = new ScheduledTask { Metadata = new ObjectMeta { Name = world.Task.Name, Namespace = world.Task.Namespace }, Spec = spec };
        await world.Client.Kv.PutStringAsync(world.Layout.TaskKey(world.Task.Namespace, world.Task.Name), KvTaskSpec.From(manifest, TaskOwner.Cli).ToJson(), cancellationToken: Ct);
    }

    private static TaskDefinition Shell(ClaimWorld world, string shell, ConcurrencyPolicy policy) =>
        ContenderRig.DefinitionOf(world.Task, new ScheduledTaskSpec { Every = "1h", Shell = shell, ConcurrencyPolicy = policy });

    /// <summary>Writes a trigger key as <c>dtask trigger</c> does (CAS 0), with the given <c>requestedAt</c>.</summary>
    private static async Task<ManualTrigger> WriteTriggerAsync(ClaimWorld world, DateTimeOffset requestedAt)
    {
        var id = Guid.NewGuid().ToString("N");
        var key = world.Layout.TriggerKey(world.Task.Namespace, world.Task.Name, id);
        var request = new ControlRequest { Action = ControlAction.Trigger, Id = id, RequestedAt = requestedAt, RequestedBy = "cli@elsewhere" };
        Assert.True((await world.Client.Kv.PutAsync(key, Encoding.UTF8.GetBytes(StateJson.Serialize(request)), new KvPutOptions { Cas = 0 }, Ct)).Value);
        var pair = (await world.Client.Kv.GetAsync(key, cancellationToken: Ct)).Value!;
        return new ManualTrigger(id, key, pair.CreateIndex);
    }

    private static async Task<RunRecord?> ManualHistoryAsync(ClaimWorld world, ManualTrigger trigger)
    {
        var pair = (await world.Client.Kv.GetAsync(world.Layout.ManualHistoryKey(world.Task.Namespace, world.Task.Name, trigger.Sequence), cancellationToken: Ct)).Value;
        return pair is null ? null : RunStateStore.Decode(pair.Value);
    }
}
