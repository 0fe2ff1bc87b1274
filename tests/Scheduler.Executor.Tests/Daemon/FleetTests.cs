using System.Diagnostics;
using System.Globalization;
using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Executor.Tests.Support;

namespace Dtask.Executor.Tests.Daemon;

/// <summary>Three executor processes, one task every second: exactly one run per slot, never two at once.</summary>
public sealed class FleetTests(ConsulFixture consul)
{
    [Fact]
    public async Task Three_executors_run_each_slot_of_an_every_second_task_exactly_once()
    {
        await using var world = new DaemonWorld(consul.Agent.Address, consul.NewClient());
        var fleet = await world.StartFleetAsync(3);
        var ran = world.PathOf("ran");
        var task = await world.PutTaskAsync("tick", new ScheduledTaskSpec
        {
            Every = "1s",
            Shell = $"echo \"$DTASK_SLOT $DTASK_NODE\" >> {ran}; sleep 0.2",
            History = 100,
        });
        // The window starts at the first slot a child witnessed, not at a time computed before the executors had seen the
        // task: the executor that ran it plans every later slot, so from there on each slot must run. It ends at a slot
        // the run of a later one has proven decided (the record moved past it).
        await DaemonWorld.ScheduledOnAllAsync(fleet, "tick");
        Assert.True(await Eventually.TrueAsync(() => world.Witnesses("ran").Count > 0, TimeSpan.FromSeconds(30)), "no slot ran");
        var from = world.Witnesses("ran")[0].Slot;
        var until = from + 19;
        Assert.True(await world.WitnessedAfterAsync("ran", until, TimeSpan.FromSeconds(90)), $"no slot after {until} ran");
        foreach (var executor in fleet)
        {
            Assert.Equal(0, await executor.StopAsync());
        }

        var lines = world.ReadLines("ran").Select(l => l.Split(' ')).ToList();
        var history = (await world.HistoryAsync(task)).Where(r => r.Slot >= from && r.Slot <= until).OrderBy(r => r.Slot).ToList();
        var (writes, runs) = world.FiringWrites();
        var delays = world.FireDelays().Order().ToList();
        var perNode = lines.GroupBy(l => l[1]).Select(g => $"{g.Key}={g.Count()}");
        var report = string.Create(CultureInfo.InvariantCulture,
            $"slots {from}..{until}: {history.Count} records; {runs} runs, {writes} firing writes = {(double)writes / Math.Max(1, runs):0.00} writes per fire; " +
            $"fire delay p50 {Percentile(delays, 0.5):0.0} ms, p99 {Percentile(delays, 0.99):0.0} ms, max {delays.LastOrDefault():0.0} ms; per node {string.Join(' ', perNode)}");
        TestContext.Current.TestOutputHelper?.WriteLine(report);
        Console.WriteLine("dtask fleet: " + report);

        // Every slot of the window ran at most once, and nowhere else: it succeeded, or (Forbid) it was recorded skipped
        // because the run before it had not been recorded finished yet (a loaded machine: a late start and a slow finish
        // of a 0.2 s run can reach past the next slot's instant). Most slots ran.
        var ranSlots = 0;
        for (var slot = from; slot <= until; slot++)
        {
            var s = slot.ToString(CultureInfo.InvariantCulture);
            var found = history.FirstOrDefault(r => r.Slot == slot);
            var witnessed = lines.Count(l => l[0] == s);
            Assert.True(witnessed <= 1, $"slot {s}: {witnessed} runs witnessed; {report}");
            var record = Assert.Single(history, r => r.Slot == slot);
            if (witnessed == 1)
            {
                ranSlots++;
                Assert.Equal(RunState.Succeeded, record.State);
            }
            else
            {
                Assert.True((record.State, record.Reason) == (RunState.Skipped, "still-running"),
                    $"slot {s}: no run witnessed; recorded {record.State} {record.Reason} by {record.Node}; {report}");
            }
        }

        Assert.True(ranSlots >= 15, $"only {ranSlots} of 20 slots ran; {report}");

        // No two runs overlap.
        var ordered = history.Where(r => r.StartedAt is not null).OrderBy(r => r.StartedAt).ToList();
        for (var i = 1; i < ordered.Count; i++)
        {
            Assert.True(ordered[i - 1].FinishedAt <= ordered[i].StartedAt, $"slot {ordered[i - 1].Slot} overlaps slot {ordered[i].Slot}");
        }

        Assert.True(perNode.Count() > 1, "every slot ran on one node: the ranking does not spread");
        Assert.True(writes <= runs * 3, report); // about two per fire (claim + finish), not one per node
    }

    private static double Percentile(List<double> sorted, double p) =>
        sorted.Count == 0 ? double.NaN : sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p * sorted.Count) - 1)];
}
