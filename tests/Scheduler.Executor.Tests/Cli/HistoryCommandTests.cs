using Dtask.Core.State;
using Dtask.Executor.Firing;
using Dtask.Executor.Tests.Claims;
using Dtask.Executor.Tests.Support;

namespace Dtask.Executor.Tests.Cli;

public sealed class HistoryCommandTests(ConsulFixture consul)
{
    [Fact]
    public async Task History_prints_the_records_newest_first_as_json_and_as_a_table()
    {
        await using var world = new ClaimWorld(consul);
        var node = await world.ExecutorAsync("node-hist");
        foreach (var (slot, script) in new[] { (ClaimWorld.Slot(1), "true"), (ClaimWorld.Slot(2), "exit 3"), (ClaimWorld.Slot(3), "echo three") })
        {
            Assert.Equal(FireStatus.Ran, (await node.Firing.FireAsync(world.Request(slot, script), cancellationToken: TestContext.Current.CancellationToken)).Status);
        }

        var id = world.Task.ToString();
        var common = new[] { "--prefix", world.Layout.Prefix, "--consul", consul.Agent.Address.ToString() };
        var json = await DtaskProcess.RunAsync(["history", id, "-o", "json", .. common]);
        Assert.Equal(0, json.ExitCode);
        var records = StateJson.Deserialize<RunRecord[]>(json.Output);
        Assert.Equal([ClaimWorld.Slot(3), ClaimWorld.Slot(2), ClaimWorld.Slot(1)], records.Select(r => r.Slot));
        Assert.Equal(await world.HistoryAsync(ClaimWorld.Slot(2)), records[1]);
        Assert.Equal([RunState.Succeeded, RunState.Failed, RunState.Succeeded], records.Select(r => r.State));

        var limited = StateJson.Deserialize<RunRecord[]>((await DtaskProcess.RunAsync(["history", id, "-o", "json", "--limit", "2", .. common])).Output);
        Assert.Equal(2, limited.Length);

        var table = await DtaskProcess.RunAsync(["history", id, .. common]);
        Assert.Equal(0, table.ExitCode);
        var lines = table.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains("SLOT", lines[0], StringComparison.Ordinal);
        Assert.Contains("REASON", lines[0], StringComparison.Ordinal);
        Assert.Contains("node-hist", lines[1], StringComparison.Ordinal);
        Assert.Contains("succeeded", lines[1], StringComparison.Ordinal);
        Assert.Contains("exit-code-3", lines[2], StringComparison.Ordinal);
        Assert.Contains("2030-03-17T17:49:40Z (1900000180)", lines[1], StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unknown_task_is_a_clear_error()
    {
        var exit = await DtaskProcess.RunAsync("history", "ops/no-such-task", "--prefix", "dtask-test/none/", "--consul", consul.Agent.Address.ToString());
        Assert.Equal(1, exit.ExitCode);
        Assert.Contains("task ops/no-such-task not found", exit.Error, StringComparison.Ordinal);
    }
}
