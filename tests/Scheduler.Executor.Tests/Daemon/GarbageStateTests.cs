using System.Text;
using Dtask.Consul.Kv;
using Dtask.Consul.Sessions;
using Dtask.Core.Model;
using Dtask.Executor.Tests.Support;

namespace Dtask.Executor.Tests.Daemon;

/// <summary>
/// A real executor with garbage in KV — a task spec, a run record, a history entry, a control request and a node
/// registration — runs its good tasks on schedule, logs each bad key once, and keeps running.
/// </summary>
public sealed class GarbageStateTests(ConsulFixture consul)
{
    private static ScheduledTaskSpec Spec(string witness) => new() { Every = "1s", Shell = $"echo \"$DTASK_SLOT $DTASK_NODE\" >> {witness}" };

    private static int Count(ExecutorProcess executor, string text) => executor.Lines.Count(l => l.Contains(text, StringComparison.Ordinal));

    [Fact]
    public async Task An_executor_runs_its_tasks_and_logs_each_garbage_key_once()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var world = new DaemonWorld(consul.Agent.Address, consul.NewClient());
        var layout = world.Layout;
        var deep = new string('[', 100_000);
        var badSpec = layout.TaskKey("ops", "garbage");
        var badControl = layout.TriggerKey("ops", "good", "junk");
        var badNode = layout.NodeKey("ghost");

        // Before the executor starts: a task whose run record and a history entry are garbage, and garbage beside it.
        await world.PutTaskAsync("healed", Spec(world.PathOf("healed")));
        await world.PutRawAsync(layout.RunKey("ops", "healed"), "{\"slot\":\"soon\",\"runId\":null}");
        await world.PutRawAsync(layout.HistoryKey("ops", "healed", 1), "\u00ff\u0000 not json");
        await world.PutRawAsync(badSpec, deep);
        await world.PutRawAsync(badControl, "{\"action\":7,\"id\":[],\"requestedAt\":12}");
        var session = (await world.Client.Sessions.CreateAsync(new SessionRequest("ghost", TimeSpan.FromSeconds(60)), ct)).Value;
        Assert.True((await world.Client.Kv.PutAsync(badNode, Encoding.UTF8.GetBytes("{\"node\":" + new string('{', 5000)), new KvPutOptions { Acquire = session }, ct)).Value);

        var executor = world.Start("a");
        await executor.ReadyAsync();
        await world.PutTaskAsync("good", Spec(world.PathOf("good")));

        var started = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        Assert.True(await Eventually.TrueAsync(() => world.Witnesses("good").Count(w => w.Slot > started) >= 3, TimeSpan.FromSeconds(30)),
            $"the good task did not run on schedule\n{executor.Output}");
        Assert.True(await Eventually.TrueAsync(() => world.Witnesses("healed").Count(w => w.Slot > started) >= 3, TimeSpan.FromSeconds(30)),
            $"the task with a garbage run record did not run\n{executor.Output}");
        Assert.True(await executor.WaitForAsync(badSpec, TimeSpan.FromSeconds(10)), executor.Output);
        Assert.True(await executor.WaitForAsync(badControl, TimeSpan.FromSeconds(10)), executor.Output);
        Assert.True(await executor.WaitForAsync(badNode, TimeSpan.FromSeconds(10)), executor.Output);
        Assert.True(await executor.WaitForAsync("task ops/healed: the run record", TimeSpan.FromSeconds(10)), executor.Output);

        // Wake every watch again with other changes: the bad keys, unchanged, are not logged again.
        await world.PutTaskAsync("good", Spec(world.PathOf("good")) with { History = 5 });
        await world.PutRawAsync(layout.TriggerKey("ops", "good", "junk-2"), "[]");
        await world.PutRawAsync(layout.NodeKey("ghost-2"), "0");
        Assert.True(await executor.WaitForAsync(layout.TriggerKey("ops", "good", "junk-2"), TimeSpan.FromSeconds(10)), executor.Output);
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        Assert.True(await world.WitnessedAfterAsync("good", now + 2, TimeSpan.FromSeconds(30)), executor.Output);

        Assert.False(executor.HasExited, executor.Output);
        Assert.Equal(1, Count(executor, badSpec + " (index"));
        Assert.Equal(1, Count(executor, badControl + " (index"));
        Assert.Equal(1, Count(executor, badNode + " (index"));
        Assert.Equal(1, Count(executor, "task ops/healed: the run record"));
        Assert.DoesNotContain("   at ", executor.Output, StringComparison.Ordinal);
        Assert.Equal(0, await executor.StopAsync());
        await world.Client.Sessions.DestroyAsync(session, ct);
    }

    public static TheoryData<string, string, string> BadSettings => new()
    {
        { "CONSUL_CACERT", "/nonexistent/ca.pem", "CONSUL_CACERT" },
        { "DD_AGENT_HOST", "dd.local:8125", "DD_AGENT_HOST" },
        { "DTASK_DATADOG", "bogus", "DTASK_DATADOG" },
        { "SLACK_WEBHOOK", "not a url xoxb-SECRET-TOKEN", "SLACK_WEBHOOK" },
        { "DTASK_SKEW_LIMIT", "forever", "--skew-limit" },
        { "DTASK_LABELS", "zone=a,=", "label" },
        { "CONSUL_HTTP_SSL", "maybe", "CONSUL_HTTP_SSL" },
    };

    [Theory]
    [MemberData(nameof(BadSettings))]
    public async Task A_malformed_setting_exits_78_naming_it_without_a_stack_trace_or_secret(string variable, string value, string named)
    {
        await using var world = new DaemonWorld(consul.Agent.Address, consul.NewClient());
        world.Consul = new Uri("http://127.0.0.1:9"); // Nothing listens: an executor that got as far as Consul would retry forever.
        var bad = world.Start("bad-setting", new Dictionary<string, string> { [variable] = value });

        Assert.Equal(78, await bad.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains(bad.Lines, l => l.Contains(named, StringComparison.Ordinal));
        Assert.DoesNotContain(bad.Lines, l => l.Contains("   at ", StringComparison.Ordinal) || l.Contains("SECRET", StringComparison.Ordinal));
    }
}
