using System.Globalization;
using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Executor.Tests.Support;

namespace Dtask.Executor.Tests.Daemon;

/// <summary>SIGKILL of the executor holding a long run: its children die with it; the run is taken over after its session TTL.</summary>
public sealed class KilledHolderTests(ConsulFixture consul)
{
    [Fact]
    public async Task A_killed_holders_run_becomes_abandoned_and_later_slots_run_on_the_survivors()
    {
        await using var world = new DaemonWorld(consul.Agent.Address, consul.NewClient());
        var fleet = await world.StartFleetAsync(3);
        // Past start-up: a node still waiting for its peers' clocks writes no skipped marker yet (it records the slots later).
        await DaemonWorld.ClaimingOnAllAsync(fleet);
        var once = world.PathOf("once");
        var task = await world.PutTaskAsync("long", new ScheduledTaskSpec
        {
            Every = "2s",
            Shell = $"if mkdir {once} 2>/dev/null; then echo $$ >> {world.PathOf("child.pid")}; sleep 60; else echo quick; fi",
            History = 100,
        });

        Assert.True(await Eventually.TrueAsync(() => File.Exists(world.PathOf("child.pid")), TimeSpan.FromSeconds(10)));
        var holding = await world.RunRecordAsync(task);
        Assert.NotNull(holding);
        Assert.Equal(RunState.Running, holding.State);
        var holder = fleet.Single(e => e.Node == holding.Node);
        holder.Signal("KILL");
        var killedAt = DateTimeOffset.UtcNow;

        // Consul ends the session within two TTLs; the next claimer marks the run abandoned and runs later slots.
        RunRecord? abandoned = null;
        Assert.True(await Eventually.TrueAsync(() =>
        {
            var history = world.HistoryAsync(task).GetAwaiter().GetResult();
            abandoned = history.FirstOrDefault(r => r.Slot == holding.Slot && r.State == RunState.Abandoned);
            return abandoned is not null && history.Any(r => r.Slot > holding.Slot && r.State == RunState.Succeeded);
        }, TimeSpan.FromSeconds(40)), "the run was not marked abandoned, or no later slot ran");

        var records = await world.HistoryAsync(task);
        var ranLater = records.Where(r => r.Slot > holding.Slot && r.State is RunState.Succeeded or RunState.Failed).ToList();
        Assert.NotEmpty(ranLater);
        Assert.All(ranLater, r => Assert.NotEqual(holder.Node, r.Node));
        // Nobody ran the task while the dead holder's lock was held: every later run started after it was abandoned.
        Assert.All(ranLater, r => Assert.True(r.StartedAt >= abandoned!.FinishedAt, $"slot {r.Slot} started at {r.StartedAt:O}, before the lock was free"));
        Assert.All(records.Where(r => r.Slot > holding.Slot && r.StartedAt < abandoned!.FinishedAt), r => Assert.Equal(RunState.Skipped, r.State));
        TestContext.Current.TestOutputHelper?.WriteLine($"abandoned {(abandoned!.FinishedAt - killedAt)?.TotalSeconds:0.0} s after SIGKILL; {ranLater.Count} later runs");
    }

    /// <summary>The executors' termination grace (<see cref="ExecutorProcess"/>), and room for a busy machine.</summary>
    private static readonly TimeSpan Grace = TimeSpan.FromSeconds(1);

    private static readonly TimeSpan Margin = TimeSpan.FromSeconds(5);

    public static TheoryData<string, string> Trees => new()
    {
        { "alone", "sleep 45" },
        { "grandchild", "sleep 45 & wait" },
        // A grandchild that leaves the group (its own session) and ignores SIGTERM: only the environment marker finds it.
        { "escaped", "setsid sh -c 'trap \"\" TERM; echo $$ >> {pids}; sleep 45; echo end >> {witness}' & sleep 45" },
    };

    [Theory]
    [MemberData(nameof(Trees))]
    public async Task A_killed_executors_child_tree_dies_within_the_termination_grace(string name, string work)
    {
        await using var world = new DaemonWorld(consul.Agent.Address, consul.NewClient());
        var executor = world.Start("lonely");
        await executor.ReadyAsync();
        var witness = world.PathOf("witness");
        var pids = world.PathOf("tree.pid");
        work = work.Replace("{pids}", pids, StringComparison.Ordinal).Replace("{witness}", witness, StringComparison.Ordinal);
        await world.PutTaskAsync("tree-" + name, new ScheduledTaskSpec
        {
            Every = "2s",
            Shell = $"if mkdir {world.PathOf("once")} 2>/dev/null; then echo start $DTASK_SLOT >> {witness}; echo $$ >> {pids}; {work}; echo end >> {witness}; fi",
        });
        Assert.True(await Eventually.TrueAsync(() => world.ReadLines("tree.pid").Length == (name == "escaped" ? 2 : 1), TimeSpan.FromSeconds(30)),
            "the child did not start");
        var leader = world.Pids("tree.pid")[0];
        var marker = DaemonWorld.MarkerOf(leader);
        Assert.False(string.IsNullOrEmpty(marker), "the child carries no watchdog marker");
        Assert.True(await Eventually.TrueAsync(() => DaemonWorld.Contained(leader, marker!).Count >= 2, TimeSpan.FromSeconds(10)));
        var tree = DaemonWorld.Contained(leader, marker!);

        executor.Signal("KILL");
        var killed = DateTimeOffset.UtcNow;

        Assert.True(await Eventually.TrueAsync(() => DaemonWorld.Contained(leader, marker!).Count == 0, Grace + Margin),
            $"still alive {Grace + Margin} after SIGKILL of the executor: {string.Join(' ', DaemonWorld.Contained(leader, marker!))} (tree was {string.Join(' ', tree)})");
        TestContext.Current.TestOutputHelper?.WriteLine($"{tree.Count} processes gone {(DateTimeOffset.UtcNow - killed).TotalSeconds:0.00} s after SIGKILL");
        // Every process that could write the end line is dead: it never will.
        Assert.Single(world.ReadLines("witness"), l => l.StartsWith("start ", StringComparison.Ordinal));
        Assert.DoesNotContain("end", world.ReadLines("witness"));
    }

    [Fact]
    public async Task When_the_holder_is_killed_its_child_has_ended_before_the_next_child_starts()
    {
        await using var world = new DaemonWorld(consul.Agent.Address, consul.NewClient());
        var fleet = await world.StartFleetAsync(2);
        var witness = world.PathOf("witness");
        var pids = world.PathOf("child.pid");
        // Each child stamps its own start and end (the end by its TERM trap, if it gets to run it).
        var task = await world.PutTaskAsync("overlap", new ScheduledTaskSpec
        {
            Every = "10s",
            Shell = $"trap 'echo \"end $DTASK_SLOT $(date +%s.%N)\" >> {witness}; exit 143' TERM; echo \"start $DTASK_SLOT $(date +%s.%N)\" >> {witness}; " +
                    $"echo $$ >> {pids}; sleep 45 & wait $!; echo \"end $DTASK_SLOT $(date +%s.%N)\" >> {witness}",
            History = 100,
        });

        Assert.True(await Eventually.TrueAsync(() => world.ReadLines("child.pid").Length >= 1, TimeSpan.FromSeconds(30)), "no child started");
        var holding = await world.RunRecordAsync(task);
        Assert.NotNull(holding);
        var holder = fleet.Single(e => e.Node == holding.Node);
        var leader = world.Pids("child.pid")[0];
        var marker = DaemonWorld.MarkerOf(leader)!;
        holder.Signal("KILL");

        Assert.True(await Eventually.TrueAsync(() => DaemonWorld.Contained(leader, marker).Count == 0, Grace + Margin), "the killed holder's child lives on");
        var died = DateTimeOffset.UtcNow;
        // The survivor takes over once Consul has expired the dead holder's session, and starts a later slot.
        Assert.True(await Eventually.TrueAsync(() => Starts(world).Count >= 2, TimeSpan.FromSeconds(60)), "the survivor never started a later slot");

        var starts = Starts(world);
        // A child's TERM trap may run once per SIGTERM it gets (its group's and its marker's): its first end line counts.
        // The trap's own `date` carries the marker too and may be stopped with it: an end line without a time says
        // nothing of when the child ended (then it is dead by the time observed).
        var ends = world.ReadLines("witness").Where(l => l.StartsWith("end ", StringComparison.Ordinal))
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(f => f.Length >= 3 && decimal.TryParse(f[2], NumberStyles.Number, CultureInfo.InvariantCulture, out _))
            .Select(f => (Slot: long.Parse(f[1], CultureInfo.InvariantCulture), At: Stamp(f[2])))
            .GroupBy(e => e.Slot).ToDictionary(g => g.Key, g => g.Min(e => e.At));
        var first = starts[0];
        var firstEnd = ends.TryGetValue(first.Slot, out var end) ? end : died; // no end line: killed, dead by the time observed
        foreach (var later in starts.Skip(1))
        {
            Assert.True(later.At > firstEnd, $"slot {later.Slot} started at {later.At:O} while slot {first.Slot} (started {first.At:O}) ran until {firstEnd:O}");
        }

        var history = await world.HistoryAsync(task);
        Assert.Equal(RunState.Abandoned, Assert.Single(history, r => r.Slot == first.Slot).State);
        TestContext.Current.TestOutputHelper?.WriteLine($"slot {first.Slot} ended {firstEnd:O}; next start {starts[1].At:O} (slot {starts[1].Slot})");
    }

    private static List<(long Slot, DateTimeOffset At)> Starts(DaemonWorld world) =>
        [.. world.ReadLines("witness").Where(l => l.StartsWith("start ", StringComparison.Ordinal))
            .Select(l => (long.Parse(l.Split(' ')[1], CultureInfo.InvariantCulture), Stamp(l.Split(' ')[2])))
            .OrderBy(s => s.Item2)];

    private static DateTimeOffset Stamp(string seconds) =>
        DateTimeOffset.UnixEpoch.AddTicks((long)(decimal.Parse(seconds, CultureInfo.InvariantCulture) * TimeSpan.TicksPerSecond));
}
