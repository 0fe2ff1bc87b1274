using Dtask.Executor.Daemon;

namespace Dtask.Executor.Tests.Daemon;

public sealed class SlotTurnTests
{
    private static readonly TimeSpan Delta = TimeSpan.FromMilliseconds(150);

    [Fact]
    public void The_first_ranks_wait_k_delta_when_the_window_is_long()
    {
        var minute = TimeSpan.FromMinutes(1);
        Assert.Equal(new SlotTurn(TimeSpan.Zero, false), SlotTurn.Of(0, 30, 3, Delta, minute));
        Assert.Equal(new SlotTurn(Delta, false), SlotTurn.Of(1, 30, 3, Delta, minute));
        Assert.Equal(new SlotTurn(Delta * 2, false), SlotTurn.Of(2, 30, 3, Delta, minute));
    }

    [Fact]
    public void Ranks_past_the_contenders_are_backstops_spread_in_rank_order_over_the_next_step()
    {
        var minute = TimeSpan.FromMinutes(1);
        var turns = Enumerable.Range(3, 27).Select(rank => SlotTurn.Of(rank, 30, 3, Delta, minute)).ToList();
        Assert.All(turns, t => Assert.True(t.Backstop));
        Assert.Equal(Delta * 3, turns[0].Wait);
        Assert.All(turns, t => Assert.InRange(t.Wait, Delta * 3, Delta * 4));
        Assert.Equal(turns.Select(t => t.Wait).Order(), turns.Select(t => t.Wait));
        Assert.Equal(turns[^1].Wait, SlotTurn.Of(500, 30, 3, Delta, minute).Wait);
    }

    [Fact]
    public void No_rank_of_thirty_waits_past_a_third_of_a_one_second_window()
    {
        var second = TimeSpan.FromSeconds(1);
        var waits = Enumerable.Range(0, 30).Select(rank => SlotTurn.Of(rank, 30, 3, Delta, second).Wait).ToList();
        Assert.All(waits, w => Assert.True(w <= second / 3, $"{w} is past a third of the window"));
        Assert.True(waits[1] <= Delta, "a dead first-ranked node must cost at most δ");
        Assert.True(waits[1] > TimeSpan.Zero);
        Assert.Equal(27, Enumerable.Range(0, 30).Count(rank => SlotTurn.Of(rank, 30, 3, Delta, second).Backstop));
    }

    [Fact]
    public void One_contender_makes_every_other_node_a_backstop_after_one_step()
    {
        Assert.Equal(new SlotTurn(TimeSpan.Zero, false), SlotTurn.Of(0, 2, 1, Delta, TimeSpan.FromMinutes(1)));
        Assert.Equal(new SlotTurn(Delta, true), SlotTurn.Of(1, 2, 1, Delta, TimeSpan.FromMinutes(1)));
    }

    [Fact]
    public void Without_a_known_window_the_rank_delay_is_used_as_is()
    {
        Assert.Equal(new SlotTurn(Delta * 3, true), SlotTurn.Of(3, 11, 3, Delta, TimeSpan.Zero));
    }

    [Fact]
    public void A_node_that_begins_on_time_or_less_than_a_step_late_looks_at_its_turn_after_the_fire_time()
    {
        var fire = DateTimeOffset.FromUnixTimeSeconds(1_900_000_000);
        var turn = SlotTurn.Of(2, 30, 3, Delta, TimeSpan.FromMinutes(1));
        Assert.Equal(fire + (Delta * 2), SlotTurn.LookAt(turn, fire, fire.AddMinutes(1), fire, Delta));
        Assert.Equal(fire + (Delta * 2), SlotTurn.LookAt(turn, fire, fire.AddMinutes(1), fire - TimeSpan.FromSeconds(1), Delta));
        Assert.Equal(fire + (Delta * 2), SlotTurn.LookAt(turn, fire, fire.AddMinutes(1), fire + Delta, Delta));
    }

    [Fact]
    public void A_node_that_begins_late_looks_its_turn_after_it_began_so_the_ranks_above_go_first()
    {
        var fire = DateTimeOffset.FromUnixTimeSeconds(1_900_000_000);
        var began = fire + TimeSpan.FromSeconds(3);
        var looks = Enumerable.Range(0, 30).Select(rank => SlotTurn.LookAt(SlotTurn.Of(rank, 30, 3, Delta, TimeSpan.FromMinutes(1)), fire, fire.AddMinutes(1), began, Delta)).ToList();
        Assert.Equal(began, looks[0] < began ? began : looks[0]); // The first rank goes at once.
        Assert.Equal(began + Delta, looks[1]);
        Assert.Equal(began + (Delta * 2), looks[2]);
        Assert.Equal(looks.Order(), looks);
        Assert.All(looks.Skip(3), look => Assert.InRange(look, began + (Delta * 3), began + (Delta * 4)));
    }

    [Fact]
    public void A_late_node_never_looks_later_than_half_way_to_the_deadline_nor_earlier_than_its_turn()
    {
        var fire = DateTimeOffset.FromUnixTimeSeconds(1_900_000_000);
        var deadline = fire + TimeSpan.FromSeconds(10);
        var turn = SlotTurn.Of(4, 30, 3, Delta, deadline - fire);
        Assert.Equal(fire + TimeSpan.FromSeconds(5), SlotTurn.LookAt(turn, fire, deadline, fire + TimeSpan.FromSeconds(4.9), Delta));
        Assert.True(SlotTurn.LookAt(turn, fire, deadline, fire + TimeSpan.FromSeconds(8), Delta) <= fire + TimeSpan.FromSeconds(8), "a node later than half-way looks at once");
        Assert.Equal(fire + turn.Wait, SlotTurn.LookAt(turn, fire, fire + TimeSpan.FromSeconds(0.5), fire + TimeSpan.FromSeconds(0.2), Delta));
        Assert.Equal(fire + TimeSpan.FromSeconds(30) + turn.Wait, SlotTurn.LookAt(turn, fire, DateTimeOffset.MaxValue, fire + TimeSpan.FromSeconds(30), Delta));
    }
}
