using Dtask.Chaos.Evidence;

namespace Dtask.Chaos.Tests;

public sealed class WitnessLogTests
{
    [Fact]
    public void Start_and_end_lines_pair_by_run_id_and_a_trap_end_is_marked_stopped()
    {
        var (runs, unreadable) = WitnessLog.Parse(
        [
            "tick 1800000000 node-1 40 start 1800000000050000000 r1 100",
            "long 1800000000 node-2 41 start 1800000000060000000 r2 101",
            "tick 1800000000 node-1 40 end 1800000000250000000 r1 100",
            "long 1800000000 node-2 41 end 1800000003000000000 r2 101 stopped",
            "tick 1800000001 node-3 45 start 1800000001040000000 r3 102",
            "half a line",
        ]);

        Assert.Equal(["r1", "r2", "r3"], runs.Select(r => r.RunId));
        var tick = runs[0];
        Assert.Equal(("tick", 1800000000L, "node-1", 40L, 100), (tick.Task, tick.Slot, tick.Node, tick.Fence, tick.Pid));
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(1800000000050), tick.Start);
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(1800000000250), tick.End);
        Assert.False(tick.Stopped);
        Assert.True(runs[1].Stopped);
        Assert.Null(runs[2].End);
        Assert.Equal(["half a line"], unreadable);
    }
}
