using System.Globalization;
using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Executor.Claims;
using Dtask.Executor.Tests.Support;

namespace Dtask.Executor.Tests.Daemon;

/// <summary>
/// <c>placement: RoundRobin</c> with three executor processes: the nodes take turns in a fixed rotation; a node killed
/// with SIGKILL is passed over one rank step late while its registration lives on, not at all once it is gone, and the
/// two survivors alternate without a slot lost or run twice.
/// </summary>
public sealed class RoundRobinTests(ConsulFixture consul)
{
    private const long Period = 3;
    private const int Turns = 2;

    // step = min(--rank-delay, window / (4 · contenders)) = min(250 ms, 3 s / 12): a node ranked second waits 250 ms.
    private static readonly TimeSpan Step = TimeSpan.FromMilliseconds(250);

    [Fact]
    public async Task Every_node_takes_its_turn_and_a_killed_node_is_passed_over_within_one_step()
    {
        await using var world = new DaemonWorld(consul.Agent.Address, consul.NewClient());
        var fleet = await world.StartFleetAsync(3, "--rank-delay", "250ms");
        var task = await world.PutTaskAsync("turns", new ScheduledTaskSpec
        {
            Every = $"{Period}s",
            Placement = Placement.RoundRobin,
            Shell = $"echo \"$DTASK_SLOT $DTASK_NODE $(date +%s.%N)\" >> {world.PathOf("ran")}",
            History = 100,
        });
        await DaemonWorld.ScheduledOnAllAsync(fleet, "turns");

        // 3·k consecutive slots from the first one run: each node runs k of them, in a rotation.
        Assert.True(await Eventually.TrueAsync(() => world.Witnesses("ran").Count > 0, TimeSpan.FromSeconds(30)), "no slot ran");
        var from = world.Witnesses("ran")[0].Slot;
        var last = from + (Period * ((3 * Turns) - 1));
        Assert.True(await world.WitnessedAfterAsync("ran", last, TimeSpan.FromSeconds(60)), $"no slot after {last} ran");
        var rotation = Consecutive(world.Witnesses("ran"), from, last);
        var early = await world.HistoryAsync(task);
        var passes = 0;
        for (var i = 1; i < rotation.Count; i++)
        {
            // The node whose turn it is has run least recently: not one of the last two. Only a first-ranked node too slow
            // to claim within a step loses its turn to the next one (a loaded machine).
            if (rotation.Skip(Math.Max(0, i - 2)).Take(Math.Min(i, 2)).Any(w => w.Node == rotation[i].Node))
            {
                var claim = Assert.Single(early, r => r.Slot == rotation[i].Slot);
                Assert.True(ClaimDelay(claim) >= Step, $"slot {rotation[i].Slot}: not a rotation: {Describe(rotation)}");
                passes++;
            }
        }

        if (passes == 0)
        {
            Assert.All(fleet, e => Assert.Equal(Turns, rotation.Count(w => w.Node == e.Node)));
        }

        // Kill the node whose turn is next, between runs (just after a run was recorded, well before the next slot).
        var recorded = await RecordedAfterAsync(world, task, last);
        var lastTwo = Consecutive(world.Witnesses("ran"), recorded.Slot - Period, recorded.Slot).Select(w => w.Node).ToList();
        var dead = fleet.First(e => !lastTwo.Contains(e.Node)); // the least recent: its turn is next
        dead.Signal("KILL");
        await dead.WaitForExitAsync(TimeSpan.FromSeconds(10));
        var survivors = fleet.Where(e => e != dead).Select(e => e.Node).ToHashSet();

        // Its registration lives on until Consul ends its session (up to two TTLs): meanwhile it stays first in the
        // rotation, and the survivor ranked second takes each slot after one step. Then it is gone from the ranking.
        Assert.True(await Eventually.TrueAsync(
            () => world.Client.Kv.GetAsync(world.Layout.NodeKey(dead.Node)).GetAwaiter().GetResult().Value is null, TimeSpan.FromSeconds(40)),
            $"the registration of {dead.Node} stayed");
        var gone = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var firstGone = (gone / Period * Period) + Period;

        // Gone from the ranking: while the dead node was registered no claim could come before a step (it was ranked
        // first), so a slot after its registration went that was claimed within a step proves it is passed over. (A first-
        // ranked node that is merely slow looks like a dead one for that slot; on a loaded machine some slots are late,
        // so the proof is the first fast claim, not a count of late ones.)
        RunRecord? fast = null;
        Assert.True(await Eventually.TrueAsync(() =>
        {
            fast = world.HistoryAsync(task).GetAwaiter().GetResult().Where(r => r.Slot >= firstGone && r.State == RunState.Succeeded && ClaimDelay(r) < Step)
                .OrderBy(r => r.Slot).FirstOrDefault();
            return fast is not null;
        }, TimeSpan.FromSeconds(60)), $"no slot after the registration of {dead.Node} was gone (at {gone}) was claimed within a step");
        var end = fast!.Slot;
        Assert.True(await world.WitnessedAfterAsync("ran", end - 1, TimeSpan.FromSeconds(10)), $"slot {end} has no witness");

        var history = await world.HistoryAsync(task);
        var claims = history.Where(r => r.Slot > recorded.Slot && r.Slot <= end).OrderBy(r => r.Slot).ToList();
        var report = string.Join(", ", claims.Select(r => string.Create(CultureInfo.InvariantCulture, $"{r.Slot} {r.Node} +{ClaimDelay(r).TotalMilliseconds:0} ms")));
        TestContext.Current.TestOutputHelper?.WriteLine($"rotation: {Describe(rotation)}; {dead.Node} killed; registration gone at {gone}; claims since: {report}");

        // None lost, none doubled, only survivors, and they alternate: a node runs twice in a row only when the one whose
        // turn it was let the slot pass (claimed two steps late, after both ranks before it had their turn).
        var after = Consecutive(world.Witnesses("ran"), recorded.Slot + Period, end);
        Assert.All(after, w => Assert.Contains(w.Node, survivors));
        for (var i = 1; i < after.Count; i++)
        {
            var claim = Assert.Single(claims, r => r.Slot == after[i].Slot);
            Assert.True(after[i].Node != after[i - 1].Node || ClaimDelay(claim) >= 2 * Step, $"the survivors do not alternate at slot {after[i].Slot}: {report}");
        }

        for (var slot = from; slot <= end; slot += Period)
        {
            var s = slot;
            Assert.Equal(RunState.Succeeded, Assert.Single(history, r => r.Slot == s).State);
        }

        // Passed over within one step while registered: every such slot was claimed a step late, by a survivor, none lost.
        Assert.All(claims.Where(r => r.Slot + 1 < gone), r => Assert.True(ClaimDelay(r) >= Step,
            $"slot {r.Slot} was claimed {ClaimDelay(r).TotalMilliseconds:0} ms after its time, before the dead node's turn was over: {report}"));
    }

    private static TimeSpan ClaimDelay(RunRecord r) => r.StartedAt!.Value - DateTimeOffset.FromUnixTimeSeconds(r.Slot);

    /// <summary>The witnesses of every slot from <paramref name="first"/> to <paramref name="last"/>: exactly one each.</summary>
    private static List<Witness> Consecutive(IReadOnlyList<Witness> witnesses, long first, long last)
    {
        var list = new List<Witness>();
        for (var slot = first; slot <= last; slot += Period)
        {
            var s = slot;
            list.Add(Assert.Single(witnesses, w => w.Slot == s));
        }

        return list;
    }

    /// <summary>Waits for the history entry of the newest slot after <paramref name="slot"/> to be written (its run is over).</summary>
    private static async Task<RunRecord> RecordedAfterAsync(DaemonWorld world, TaskId task, long slot)
    {
        RunRecord? found = null;
        Assert.True(await Eventually.TrueAsync(() =>
        {
            found = world.HistoryAsync(task).GetAwaiter().GetResult().FirstOrDefault(r => r.Slot > slot && r.State == RunState.Succeeded);
            return found is not null;
        }, TimeSpan.FromSeconds(30)), $"no run after slot {slot} was recorded");
        return found!;
    }

    /// <summary>How long after its slot the child started (the task has no jitter).</summary>
    private static TimeSpan Delay(Witness w) =>
        TimeSpan.FromSeconds(double.Parse(w.Extra!, CultureInfo.InvariantCulture) - w.Slot);

    private static string Describe(IEnumerable<Witness> witnesses) =>
        string.Join(", ", witnesses.Select(w => string.Create(CultureInfo.InvariantCulture, $"{w.Slot} {w.Node} +{Delay(w).TotalMilliseconds:0} ms")));
}
