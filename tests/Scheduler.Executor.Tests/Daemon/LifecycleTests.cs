using System.Net.Sockets;
using System.Text;
using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Executor.Daemon;
using Dtask.Executor.Tests.Support;

namespace Dtask.Executor.Tests.Daemon;

/// <summary>READY through the notify socket, SIGTERM shutdown, and refusing a node name that is taken.</summary>
public sealed class LifecycleTests(ConsulFixture consul)
{
    [Fact]
    public async Task Ready_comes_after_registration_and_SIGTERM_drains_stops_records_and_leaves()
    {
        await using var world = new DaemonWorld(consul.Agent.Address, consul.NewClient());
        var node = "ready-" + Guid.NewGuid().ToString("N")[..8];
        var socketPath = world.PathOf("notify.sock");
        using var socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        socket.Bind(new UnixDomainSocketEndPoint(socketPath));
        var shortTask = await world.PutTaskAsync("short", new ScheduledTaskSpec { Every = "1s", Shell = "sleep 2", History = 100 });
        var longTask = await world.PutTaskAsync("long", new ScheduledTaskSpec { Every = "1s", Shell = "sleep 60", History = 100 });

        var executor = world.Start(node, new Dictionary<string, string> { ["NOTIFY_SOCKET"] = socketPath });
        var buffer = new byte[4096];
        using var receiveTimeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        string message;
        do
        {
            var n = await socket.ReceiveAsync(buffer, SocketFlags.None, receiveTimeout.Token);
            message = Encoding.UTF8.GetString(buffer, 0, n);
        }
        while (!message.Contains("READY=1", StringComparison.Ordinal));

        // READY arrived: the node is registered already.
        var registration = (await world.Client.Kv.GetAsync(world.Layout.NodeKey(node), cancellationToken: TestContext.Current.CancellationToken)).Value;
        Assert.NotNull(registration);
        Assert.NotNull(registration.Session);
        var nodeRecord = StateJson.Deserialize<NodeRecord>(registration.ValueAsString());
        Assert.Equal(node, nodeRecord.Node);

        // Both children running, then SIGTERM.
        Assert.True(await Eventually.TrueAsync(() =>
            world.RunRecordAsync(shortTask).GetAwaiter().GetResult()?.State == RunState.Running
            && world.RunRecordAsync(longTask).GetAwaiter().GetResult()?.State == RunState.Running, TimeSpan.FromSeconds(10)));
        var shortRun = (await world.RunRecordAsync(shortTask))!;
        var longRun = (await world.RunRecordAsync(longTask))!;
        Assert.Equal(0, await executor.StopAsync());

        // The short child finished within the grace period, the long one was stopped after it; both recorded, locks released.
        var shortEnd = Assert.Single(await world.HistoryAsync(shortTask), r => r.Slot == shortRun.Slot);
        Assert.Equal(RunState.Succeeded, shortEnd.State);
        var longEnd = Assert.Single(await world.HistoryAsync(longTask), r => r.Slot == longRun.Slot);
        Assert.Contains("shutdown", longEnd.Reason, StringComparison.Ordinal);
        Assert.True(longEnd.FinishedAt - longEnd.StartedAt >= TimeSpan.FromSeconds(4), "the long child was stopped before the grace period");
        Assert.Null((await world.Client.Kv.GetAsync(world.Layout.LockKey("ops", "long"), cancellationToken: TestContext.Current.CancellationToken)).Value?.Session);
        Assert.Null((await world.Client.Kv.GetAsync(world.Layout.NodeKey(node), cancellationToken: TestContext.Current.CancellationToken)).Value);
        var sessions = (await world.Client.Sessions.ListAsync(cancellationToken: TestContext.Current.CancellationToken)).Value;
        Assert.DoesNotContain(sessions, s => s.Name.Contains(node, StringComparison.Ordinal));
        Assert.Contains(executor.Lines, l => l.Contains("consul requests: firing", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_node_name_held_by_a_live_executor_is_refused_and_bad_options_exit_78()
    {
        await using var world = new DaemonWorld(consul.Agent.Address, consul.NewClient());
        var first = world.Start("twin");
        await first.ReadyAsync();
        var second = world.Start("twin");
        // It waits two session TTLs (and 5 s) for the name, as for a killed predecessor's registration, then gives up.
        Assert.Equal(1, await second.WaitForExitAsync(TimeSpan.FromSeconds(90)));
        Assert.Contains(second.Lines, l => l.Contains("waiting up to", StringComparison.Ordinal) && l.Contains("to expire", StringComparison.Ordinal));
        Assert.Contains(second.Lines, l => l.Contains("refusing to start", StringComparison.Ordinal) && l.Contains("twin", StringComparison.Ordinal));

        var bad = world.Start("Not_A_Name", null, "--skew-limit=0s", "--rank-delay=-5ms");
        Assert.Equal(78, await bad.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains(bad.Lines, l => l.Contains("--node", StringComparison.Ordinal) && l.Contains("DNS-1123", StringComparison.Ordinal));
        Assert.Contains(bad.Lines, l => l.Contains("--rank-delay", StringComparison.Ordinal));
        Assert.Contains(bad.Lines, l => l.Contains("--skew-limit", StringComparison.Ordinal));
        Assert.DoesNotContain(bad.Lines, l => l.Contains("   at ", StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_executor_started_again_right_after_a_SIGKILL_waits_for_its_predecessors_registration_and_runs()
    {
        await using var world = new DaemonWorld(consul.Agent.Address, consul.NewClient());
        var first = world.Start("phoenix");
        await first.ReadyAsync();
        first.Signal("KILL");
        await first.WaitForExitAsync(TimeSpan.FromSeconds(10));

        // The killed process's registration lives until Consul expires its session (up to two TTLs).
        var again = world.Start("phoenix");
        Assert.True(await again.WaitForAsync("node phoenix registered", TimeSpan.FromSeconds(60)), again.Output);
        await again.ReadyAsync();
        Assert.DoesNotContain(again.Lines, l => l.Contains("refusing to start", StringComparison.Ordinal));
        var code = await again.StopAsync();
        Assert.True(code == 0, again.Output);
    }

    [Fact]
    public async Task A_termination_grace_that_does_not_fit_the_session_ttl_exits_78_before_touching_consul()
    {
        await using var world = new DaemonWorld(consul.Agent.Address, consul.NewClient());
        // Nothing listens on port 9: an executor that got as far as Consul would retry there forever.
        world.Consul = new Uri("http://127.0.0.1:9");
        var bad = world.Start("slow-stop", null, "--session-ttl=10s", "--termination-grace=5s");
        Assert.Equal(78, await bad.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        var line = Assert.Single(bad.Lines, l => l.Contains("--termination-grace", StringComparison.Ordinal));
        Assert.Contains("--termination-grace 5s plus the 1s kill wait (6s) must fit in half of --session-ttl 10s (5s)", line, StringComparison.Ordinal);
        Assert.Contains("at most 4s", line, StringComparison.Ordinal);
        Assert.Contains("at least 12s", line, StringComparison.Ordinal);

        // The defaults fit, with the default TTL and with the smallest Consul accepts.
        Assert.True(new ExecutorOptionsValidator().Validate(null, new ExecutorOptions { Node = "n" }).Succeeded);
        Assert.True(new ExecutorOptionsValidator().Validate(null, new ExecutorOptions { Node = "n", SessionTtl = TimeSpan.FromSeconds(10) }).Succeeded);
        Assert.True(new ExecutorOptionsValidator().Validate(null, new ExecutorOptions { Node = "n", SessionTtl = TimeSpan.FromSeconds(30), TerminationGrace = TimeSpan.FromSeconds(14) }).Succeeded);
        Assert.True(new ExecutorOptionsValidator().Validate(null, new ExecutorOptions { Node = "n", SessionTtl = TimeSpan.FromSeconds(30), TerminationGrace = TimeSpan.FromSeconds(15) }).Failed);
    }
    [Fact]
    public async Task SIGTERM_while_start_up_still_waits_for_Consul_exits_0_without_a_stack_trace()
    {
        await using var world = new DaemonWorld(consul.Agent.Address, consul.NewClient());
        // Nothing listens on port 9: start-up waits there, retrying, until it is stopped.
        world.Consul = new Uri("http://127.0.0.1:9");
        var waiting = world.Start("early-stop");
        Assert.True(await waiting.WaitForAsync("cannot be used", TimeSpan.FromSeconds(30)), waiting.Output);
        waiting.Signal("TERM");
        Assert.Equal(0, await waiting.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains(waiting.Lines, l => l.Contains("stopped before start-up finished", StringComparison.Ordinal));
        Assert.DoesNotContain(waiting.Lines, l => l.Contains("   at ", StringComparison.Ordinal) || l.Contains("Unhandled", StringComparison.Ordinal));
    }
}
