using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Executor.Claims;
using Dtask.Executor.Daemon;

namespace Dtask.Executor.Tests.Daemon;

/// <summary>The rendezvous order of a slot's nodes, and the RoundRobin order, slot after slot, as the executors compute it from the history they read.</summary>
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

    [Fact]
    public void By_hash_every_node_of_thirty_is_first_about_as_often_as_the_others_and_each_rank_is_spread_alike()
    {
        var nodes = Enumerable.Range(0, 30).Select(i => $"node-{i:00}.example.internal").ToList();
        var first = nodes.ToDictionary(n => n, _ => 0);
        var second = nodes.ToDictionary(n => n, _ => 0);
        const int Slots = 30_000;
        for (long slot = 1_900_000_000; slot < 1_900_000_000 + Slots; slot++)
        {
            var order = SlotRanking.ByHash(Task, slot, nodes);
            first[order[0]]++;
            second[order[1]]++;
        }

        // 1,000 expected each; a binomial's standard deviation is about 31.
        Assert.All(first.Values, count => Assert.InRange(count, 850, 1150));
        Assert.All(second.Values, count => Assert.InRange(count, 850, 1150));
    }

    [Fact]
    public void By_hash_a_node_joining_or_leaving_moves_no_other_node_in_the_order()
    {
        var nodes = Enumerable.Range(0, 20).Select(i => $"n{i}").ToList();
        for (long slot = 0; slot < 500; slot++)
        {
            var before = SlotRanking.ByHash(Task, slot, nodes);
            var joined = SlotRanking.ByHash(Task, slot, [.. nodes, "newcomer"]);
            Assert.Equal(before, joined.Where(n => n != "newcomer"));
            var left = SlotRanking.ByHash(Task, slot, nodes.Where(n => n != "n7"));
            Assert.Equal(before.Where(n => n != "n7"), left);
        }
    }

    [Fact]
    public void By_hash_the_order_depends_on_the_task_and_the_slot_not_on_how_the_nodes_are_listed()
    {
        var nodes = Enumerable.Range(0, 10).Select(i => $"n{i}").ToList();
        Assert.Equal(SlotRanking.ByHash(Task, 42, nodes), SlotRanking.ByHash(Task, 42, [.. Enumerable.Reverse(nodes), "n3"]));
        var orders = Enumerable.Range(0, 50).Select(slot => string.Join(',', SlotRanking.ByHash(Task, slot, nodes))).ToHashSet();
        Assert.True(orders.Count >= 45, $"only {orders.Count} distinct orders in 50 slots");
        Assert.NotEqual(SlotRanking.ByHash(Task, 42, nodes), SlotRanking.ByHash(new TaskId("ops", "other"), 42, nodes));
    }

    private static RunRecord Record(long slot, string node, RunState state) =>
        new() { Slot = slot, Node = node, State = state, RunId = $"{slot}-{node}", Session = "s" };
}
