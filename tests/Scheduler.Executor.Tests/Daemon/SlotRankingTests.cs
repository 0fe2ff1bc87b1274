using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Executor.Claims;
using Dtask.Executor.Daemon;

namespace Dtask.Executor.Tests.Daemon;

/// <summary>The RoundRobin order, slot after slot, as the executors compute it from the history they read.</summary>
public sealed class SlotRankingTests
{
    private static readonly TaskId Task = new("ops", "turns");

    [Fact]
    public void Each_node_takes_a_turn_in_a_fixed_rotation()
    {
        string[] nodes = ["node-0", "node-1", "node-2"];
        var history = new List<RunRecord>();
        var ran = new List<string>();
        for (long slot = 3000; slot < 3000 + (12 * 3); slot += 3)
        {
            var first = SlotRanking.ByLeastRecent(Task, slot, nodes, SlotRanking.LastRan(history))[0];
            ran.Add(first);
            history.Add(Record(slot, first, RunState.Succeeded));
        }

        Assert.Equal(3, ran.Take(3).Distinct().Count());
        for (var i = 3; i < ran.Count; i++)
        {
            Assert.Equal(ran[i - 3], ran[i]);
        }
    }

    [Fact]
    public void Skipped_and_missed_slots_do_not_count_as_a_turn()
    {
        var history = new List<RunRecord>
        {
            Record(3000, "a", RunState.Succeeded),
            Record(3003, "b", RunState.Failed),
            Record(3006, "a", RunState.Skipped),
            Record(3009, "a", RunState.Missed),
        };

        Assert.Equal(["a", "b"], SlotRanking.ByLeastRecent(Task, 3012, ["a", "b"], SlotRanking.LastRan(history)));
    }

    [Fact]
    public void A_dead_node_is_first_while_registered_and_gone_from_the_order_once_its_registration_is()
    {
        var history = new List<RunRecord> { Record(3000, "a", RunState.Succeeded), Record(3003, "b", RunState.Succeeded), Record(3006, "c", RunState.Succeeded) };

        // "a" died after its run: while it is registered it stays least recent, ranked first, and the survivors follow in turn.
        Assert.Equal(["a", "b", "c"], SlotRanking.ByLeastRecent(Task, 3009, ["a", "b", "c"], SlotRanking.LastRan(history)));
        history.Add(Record(3009, "b", RunState.Succeeded));
        Assert.Equal(["a", "c", "b"], SlotRanking.ByLeastRecent(Task, 3012, ["a", "b", "c"], SlotRanking.LastRan(history)));

        // Its registration gone: the two survivors alternate.
        history.Add(Record(3012, "c", RunState.Succeeded));
        Assert.Equal(["b", "c"], SlotRanking.ByLeastRecent(Task, 3015, ["b", "c"], SlotRanking.LastRan(history)));
        history.Add(Record(3015, "b", RunState.Succeeded));
        Assert.Equal(["c", "b"], SlotRanking.ByLeastRecent(Task, 3018, ["b", "c"], SlotRanking.LastRan(history)));
    }

    private static RunRecord Record(long slot, string node, RunState state) =>
        new() { Slot = slot, Node = node, State = state, RunId = $"{slot}-{node}", Session = "s" };
}
