using System.Globalization;
using System.Text.RegularExpressions;
using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Executor.Claims;
using Dtask.Executor.Tests.Cli;
using Dtask.Executor.Tests.Support;

namespace Dtask.Executor.Tests.Daemon;

/// <summary>
/// Real executors that plan a task from a stale last slot (paused longer than history × period; selected again after
/// slots ran elsewhere) while its history was trimmed: no slot that ran is recorded (or alerted) <c>missed</c>.
/// </summary>
public sealed partial class StaleNodeTests(ConsulFixture consul)
{
    private static ScheduledTaskSpec Spec(string witness, IReadOnlyDictionary<string, string>? selector = null) => new()
    {
        Every = "1s",
        Shell = $"echo \"$DTASK_SLOT $DTASK_NODE\" >> {witness}",
        History = 3,
        NodeSelector = selector,
    };

    /// <summary>The slots the children wrote, with the node that ran each.</summary>
    private static Dictionary<long, string> Ran(DaemonWorld world) =>
        world.ReadLines("ran").Select(l => l.Split(' ')).Where(p => p.Length == 2)
            .GroupBy(p => long.Parse(p[0], CultureInfo.InvariantCulture)).ToDictionary(g => g.Key, g => g.First()[1]);

    /// <summary>The slots <paramref name="executor"/> logged as recorded missed (each one a missed-slot notification too).</summary>
    private static IReadOnlyList<long> LoggedMissed(ExecutorProcess executor) =>
        [.. executor.Lines.Select(l => RecordedMissed().Match(l)).Where(m => m.Success).Select(m => long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture))];

    private static async Task<IReadOnlyList<RunRecord>> HistoryJsonAsync(DaemonWorld world, TaskId task)
    {
        var exit = await DtaskProcess.RunAsync("history", task.ToString(), "-o", "json", "--prefix", world.Prefix, "--consul", world.Consul.ToString());
        Assert.Equal(0, exit.ExitCode);
        return StateJson.Deserialize<RunRecord[]>(exit.Output) ?? [];
    }

    private static void AssertNoRanSlotMissed(Dictionary<long, string> ran, IReadOnlyList<long> logged, IReadOnlyList<RunRecord> history, string output)
    {
        Assert.True(logged.All(s => !ran.ContainsKey(s)), $"slots that ran were recorded missed: {string.Join(", ", logged.Where(ran.ContainsKey))}\n{output}");
        Assert.DoesNotContain(history, r => r.State == RunState.Missed && ran.ContainsKey(r.Slot));
    }

    [Fact]
    public async Task An_executor_paused_longer_than_history_times_period_records_none_of_the_slots_run_meanwhile_missed()
    {
        await using var world = new DaemonWorld(consul.Agent.Address, consul.NewClient());
        var fleet = await world.StartFleetAsync(2);
        var task = await world.PutTaskAsync("paused", Spec(world.PathOf("ran")));
        Assert.True(await Eventually.TrueAsync(() => Ran(world).Values.Distinct().Count() == 2, TimeSpan.FromSeconds(30)), "both executors should run slots");

        // One executor stops for 8 s (history 3 × every 1 s: the entries of most slots it slept through are trimmed).
        var paused = fleet[0];
        paused.Signal("STOP");
        var stoppedAt = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        Assert.True(await Eventually.TrueAsync(() => Ran(world).Keys.Count(s => s > stoppedAt + 1) >= 6, TimeSpan.FromSeconds(30)), "the other executor should run the task meanwhile");
        var rest = TimeSpan.FromSeconds(8 - (DateTimeOffset.UtcNow.ToUnixTimeSeconds() - stoppedAt));
        if (rest > TimeSpan.Zero)
        {
            await Task.Delay(rest, TestContext.Current.CancellationToken); // The length of the pause (the fault), not a wait for an event.
        }

        paused.Signal("CONT");
        var resumedAt = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

        // Back: it plans again, and runs slots of its own after the pause.
        Assert.True(await Eventually.TrueAsync(() => Ran(world).Any(p => p.Key > resumedAt + 1 && p.Value == paused.Node), TimeSpan.FromSeconds(30)),
            $"the resumed executor ran nothing\n{paused.Output}");

        AssertNoRanSlotMissed(Ran(world), LoggedMissed(paused), await HistoryJsonAsync(world, task), paused.Output);
    }

    [Fact]
    public async Task An_executor_selected_after_the_task_ran_ten_slots_elsewhere_records_none_of_them_missed()
    {
        await using var world = new DaemonWorld(consul.Agent.Address, consul.NewClient());
        var first = world.Start("first", null, "--labels", "pool=a");
        var second = world.Start("second", null, "--labels", "pool=b");
        await first.ReadyAsync();
        await second.ReadyAsync();
        var task = await world.PutTaskAsync("relabelled", Spec(world.PathOf("ran"), new Dictionary<string, string> { ["pool"] = "a" }));
        Assert.True(await Eventually.TrueAsync(() => Ran(world).Count >= 12, TimeSpan.FromSeconds(40)), "the first executor should run 12 slots");
        Assert.All(Ran(world).Values, n => Assert.Equal("first", n));

        // The task now selects every node: the second executor takes turns from now on.
        await world.PutTaskAsync("relabelled", Spec(world.PathOf("ran")));
        Assert.True(await Eventually.TrueAsync(() => Ran(world).ContainsValue("second"), TimeSpan.FromSeconds(30)), $"the second executor ran nothing\n{second.Output}");

        AssertNoRanSlotMissed(Ran(world), LoggedMissed(second), await HistoryJsonAsync(world, task), second.Output);
    }

    [GeneratedRegex(@"slot (\d+) recorded missed")]
    private static partial Regex RecordedMissed();
}
