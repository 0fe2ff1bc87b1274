using System.Globalization;
using System.Text.Json;
using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Executor.Tests.Cli;
using Dtask.Executor.Tests.Support;
using Dtask.Testing;

namespace Dtask.Executor.Tests.Daemon;

/// <summary>
/// Real executors, one of them on a wrong clock (libfaketime), sharing one Consul agent: the skewed node neither claims
/// nor records any slot and says so in its log and in <c>dtask get nodes</c>, while the good node fires every slot on
/// time, by its children's own clocks.
/// </summary>
public sealed class ClockSkewFleetTests(ConsulFixture consul)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData("+30s", "ahead of", 30)]
    [InlineData("-30s", "behind", -30)]
    public async Task A_node_whose_clock_is_off_by_30_s_fires_and_records_nothing_while_the_other_fires_every_slot(string offset, string direction, double skew)
    {
        var library = Libfaketime.Find();
        await using var world = new DaemonWorld(consul.Agent.Address, consul.NewClient());
        var good = world.Start("good");
        var skewed = world.Start("skewed", Libfaketime.Environment(library, ("FAKETIME", offset)));
        await good.ReadyAsync();
        await skewed.ReadyAsync();
        Assert.True(await skewed.WaitForAsync($"s {direction} its references", TimeSpan.FromSeconds(20)), skewed.Output);

        var task = await world.PutTaskAsync("tick", Ticking(world));
        var (from, until) = await WindowAsync(world, slots: 8);
        await AssertShownSkewedAsync(world, "skewed", skew);
        Assert.Equal(0, await good.StopAsync());
        Assert.Equal(0, await skewed.StopAsync());

        var history = await world.HistoryAsync(task);
        AssertEverySlotRanOnTime(SkewWitness.Read(world), history, from, until, node => node == "good");
        Assert.DoesNotContain(history, r => r.Node == "skewed");
        // "slots … not recorded missed here: the executor is shutting down" (markers still waiting for the guard) is not a record.
        Assert.DoesNotContain(skewed.Lines, l => System.Text.RegularExpressions.Regex.IsMatch(l, @"slot \d+ recorded missed") || l.Contains("fire delay", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_node_on_a_local_agent_that_shares_its_wrong_clock_is_caught_by_the_other_executors_clocks()
    {
        var library = Libfaketime.Find();
        await using var world = new DaemonWorld(consul.Agent.Address, consul.NewClient());

        // The agent of the node 30 s ahead stamps its answers with the same wrong clock: its Date header alone shows no skew.
        await using var localAgent = new DateShiftingProxy(consul.Agent.Address, TimeSpan.FromSeconds(30));
        var fleet = new[] { world.Start("good-1"), world.Start("good-2") };
        var ahead = ExecutorProcess.Start(localAgent.Address, world.Prefix, "ahead", Libfaketime.Environment(library, ("FAKETIME", "+30s")));
        await using var aheadOwned = ahead;
        foreach (var executor in fleet.Append(ahead))
        {
            await executor.ReadyAsync();
        }

        Assert.True(await ahead.WaitForAsync("s ahead of its references (median of 3: Consul agent", TimeSpan.FromSeconds(30)), ahead.Output);
        Assert.True(localAgent.Shifted > 0);
        var detected = Assert.Single(ahead.Lines, l => l.Contains("ahead of its references", StringComparison.Ordinal));
        // Each peer's stamp says about +30 s (less the allowance of 1 s; a stamp read late on a loaded machine says more).
        Assert.Matches(@"Consul agent [+-]?0\.\d s, node good-\d \+(2[89]|3[0-4])\.\d s, node good-\d \+(2[89]|3[0-4])\.\d s", detected);

        var task = await world.PutTaskAsync("tick", Ticking(world));
        var (from, until) = await WindowAsync(world, slots: 8);
        await AssertShownSkewedAsync(world, "ahead", 30);
        Assert.Equal(0, await ahead.StopAsync());
        foreach (var executor in fleet)
        {
            Assert.Equal(0, await executor.StopAsync());
        }

        var runs = SkewWitness.Read(world);
        var history = await world.HistoryAsync(task);
        AssertEverySlotRanOnTime(runs, history, from, until, node => node.StartsWith("good-", StringComparison.Ordinal));
        Assert.DoesNotContain(runs, r => r.Node == "ahead");
        Assert.DoesNotContain(history, r => r.Node == "ahead");
        TestContext.Current.TestOutputHelper?.WriteLine("--- executor ahead ---\n" + ahead.Output);
    }

    [Fact]
    public async Task A_node_whose_clock_jumps_an_hour_ahead_while_running_stops_within_seconds_and_the_other_fires_every_slot()
    {
        var library = Libfaketime.Find();
        await using var world = new DaemonWorld(consul.Agent.Address, consul.NewClient());
        var clockFile = world.PathOf("faketime");
        await File.WriteAllTextAsync(clockFile, "+0\n", Ct);
        var good = world.Start("good");
        var jumper = world.Start("jumper", Libfaketime.Environment(library, ("FAKETIME_TIMESTAMP_FILE", clockFile), ("FAKETIME_CACHE_DURATION", "1")));
        await good.ReadyAsync();
        await jumper.ReadyAsync();
        var task = await world.PutTaskAsync("tick", Ticking(world));

        // Both nodes take their turns until the jump.
        Assert.True(await Eventually.TrueAsync(() => SkewWitness.Read(world).Any(r => r.Node == "jumper"), TimeSpan.FromSeconds(60)),
            "the node on the faked clock never ran a slot before its clock jumped:\n" + jumper.Output);
        await File.WriteAllTextAsync(clockFile, "+1h\n", Ct);
        var jumped = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;
        Assert.True(await jumper.WaitForAsync("s ahead of its references", TimeSpan.FromSeconds(10)), jumper.Output);
        var stopped = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;
        var after = (long)Math.Ceiling(stopped);
        after += after % 2;

        // Six slots after the node stopped, judged once a later one ran.
        var until = after + 10;
        Assert.True(await Eventually.TrueAsync(() => SkewWitness.Read(world).Any(r => r.Slot > until), TimeSpan.FromSeconds(60)),
            $"slots {after}..{until} did not all run");
        await AssertShownSkewedAsync(world, "jumper", 3600);
        Assert.Equal(0, await good.StopAsync());
        Assert.Equal(0, await jumper.StopAsync());

        var runs = SkewWitness.Read(world);
        var history = await world.HistoryAsync(task);
        AssertEverySlotRanOnTime(runs, history, after, until, node => node == "good");
        Assert.DoesNotContain(runs, r => r.Node == "jumper" && r.Slot > jumped + 2);
        Assert.DoesNotContain(history, r => r.Node == "jumper" && r.State is RunState.Missed or RunState.Skipped or RunState.Abandoned);
        Assert.DoesNotContain(history, r => r.State is RunState.Missed or RunState.Abandoned);
        TestContext.Current.TestOutputHelper?.WriteLine(string.Create(CultureInfo.InvariantCulture, $"clock jumped at {jumped:0.000}, node stopped by {stopped:0.000}"));
    }

    /// <summary>
    /// Each slot of the window ran once, on a good node, not before its time by the child's own clock — or, when the
    /// machine is so loaded that the previous run had not finished, was recorded skipped (still-running) by a good node.
    /// </summary>
    private static void AssertEverySlotRanOnTime(IReadOnlyList<SkewWitness> runs, IReadOnlyList<RunRecord> history, long from, long until, Func<string, bool> good)
    {
        var ran = 0;
        for (var slot = from; slot <= until; slot += 2)
        {
            var here = runs.Where(r => r.Slot == slot).ToList();
            if (here.Count == 0)
            {
                var record = history.SingleOrDefault(r => r.Slot == slot);
                Assert.True(record is { State: RunState.Skipped } && good(record.Node), $"slot {slot} neither ran nor was skipped by a good node: {record}");
                continue;
            }

            var run = Assert.Single(here);
            Assert.True(good(run.Node), $"slot {slot} ran on {run.Node}");
            Assert.True(run.At >= slot, $"slot {slot} ran early, at {run.At:0.000} by its child's clock");
            ran++;
        }

        Assert.True(ran * 2 > (until - from + 2) / 2, $"only {ran} slots of {from}..{until} ran");
    }

    private static ScheduledTaskSpec Ticking(DaemonWorld world) => new()
    {
        Every = "2s",
        Shell = $"echo \"$(date +%s.%N) $DTASK_SLOT $DTASK_NODE\" >> {world.PathOf("ran")}",
        History = 200,
    };

    /// <summary>Waits for the first run, then for <paramref name="slots"/> slots after it to be run or overtaken; returns them.</summary>
    private static async Task<(long From, long Until)> WindowAsync(DaemonWorld world, int slots)
    {
        Assert.True(await Eventually.TrueAsync(() => SkewWitness.Read(world).Count > 0, TimeSpan.FromSeconds(30)), "no slot ran");
        var from = SkewWitness.Read(world).Max(r => r.Slot) + 2;
        var until = from + ((slots - 1) * 2);
        Assert.True(await Eventually.TrueAsync(() => SkewWitness.Read(world).Any(r => r.Slot > until), TimeSpan.FromSeconds((slots * 2) + 30)),
            $"slots {from}..{until} did not all run");
        return (from, until);
    }

    private static async Task AssertShownSkewedAsync(DaemonWorld world, string node, double skew)
    {
        var shown = await DtaskProcess.RunAsync("get", "nodes", "-o", "json", "--consul", world.Consul.ToString(), "--prefix", world.Prefix);
        Assert.Equal(0, shown.ExitCode);
        using var document = JsonDocument.Parse(shown.Output);
        var items = document.RootElement.GetProperty("items").EnumerateArray().ToDictionary(i => i.GetProperty("node").GetString()!);
        Assert.Equal("clock-skewed", items[node].GetProperty("state").GetString());
        Assert.InRange(items[node].GetProperty("skew").GetDouble(), skew - 2, skew + 2);
        Assert.All(items.Where(i => i.Key != node), i => Assert.Equal("ready", i.Value.GetProperty("state").GetString()));
    }
}

/// <summary>What the children wrote: their own clock when they ran, the slot and the node.</summary>
internal sealed record SkewWitness(double At, long Slot, string Node)
{
    public static IReadOnlyList<SkewWitness> Read(DaemonWorld world) =>
        [.. world.ReadLines("ran").Select(l => l.Split(' ')).Where(p => p.Length == 3)
            .Select(p => new SkewWitness(double.Parse(p[0], CultureInfo.InvariantCulture), long.Parse(p[1], CultureInfo.InvariantCulture), p[2]))];
}

/// <summary>libfaketime, installed by <c>scripts/install-deb.sh faketime libfaketime</c> under <c>.tools/root</c> (or by the system).</summary>
internal static class Libfaketime
{
    /// <summary>The path of <c>libfaketime.so.1</c>; fails the test, saying how to install it, when there is none.</summary>
    public static string Find()
    {
        var roots = new List<string>();
        if (RepositoryRoot.Find(AppContext.BaseDirectory) is { } repository)
        {
            roots.Add(Path.Combine(repository, ".tools", "root", "usr", "lib"));
        }

        roots.Add("/usr/lib");
        foreach (var root in roots.Where(Directory.Exists))
        {
            var found = Directory.EnumerateFiles(root, "libfaketime.so.1", SearchOption.AllDirectories).FirstOrDefault();
            if (found is not null)
            {
                return found;
            }
        }

        Assert.Fail($"libfaketime.so.1 is not under {string.Join(" or ", roots)}: run `bash scripts/install-deb.sh faketime libfaketime` (scripts/test.sh does)");
        return string.Empty;
    }

    /// <summary>The environment of a process whose wall clock libfaketime sets (its monotonic clock stays true).</summary>
    public static Dictionary<string, string> Environment(string library, params (string Name, string Value)[] settings)
    {
        var environment = new Dictionary<string, string> { ["LD_PRELOAD"] = library, ["FAKETIME_DONT_FAKE_MONOTONIC"] = "1" };
        foreach (var (name, value) in settings)
        {
            environment[name] = value;
        }

        return environment;
    }
}
