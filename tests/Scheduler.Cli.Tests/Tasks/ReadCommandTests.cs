using System.Text.Json;
using Dtask.Consul.Kv;
using Dtask.Consul.Sessions;
using Dtask.Core.Manifests;
using Dtask.Core.State;
using Dtask.Operator.Reconciliation;

namespace Dtask.Cli.Tests.Tasks;

public sealed class ReadCommandTests(TaskCommandsFixture consul) : IDisposable
{
    private readonly TaskCli cli = new(consul);
    private readonly TempDirectory folder = new();
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose() => folder.Dispose();

    private void Apply(params (string Ns, string Name, string Every)[] tasks)
    {
        foreach (var (ns, name, every) in tasks)
        {
            folder.Write($"{ns}-{name}.yaml", TaskManifests.Yaml(ns, name, every));
        }

        Assert.Equal(0, cli.Run("apply", "-f", folder.Path).ExitCode);
    }

    private static RunRecord Run(long slot, RunState state, string node, int? exit = null, string? output = null) => new()
    {
        Slot = slot,
        RunId = $"run-{slot}",
        Node = node,
        State = state,
        StartedAt = DateTimeOffset.FromUnixTimeSeconds(slot + 1),
        FinishedAt = state == RunState.Running ? null : DateTimeOffset.FromUnixTimeSeconds(slot + 4),
        ExitCode = exit,
        OutputTail = output,
    };

    private async Task PutAsync(string key, object value) =>
        await consul.Client.Kv.PutStringAsync(key, StateJson.Serialize(value), cancellationToken: Ct);

    private async Task<string> RegisterNodeHoldingAsync(string node, string ns, string name)
    {
        var session = (await consul.Client.Sessions.CreateAsync(new SessionRequest("test " + node, TimeSpan.FromSeconds(30)) { LockDelay = TimeSpan.Zero }, Ct)).Value;
        await PutAsync(cli.Layout.NodeKey(node), new NodeRecord
        {
            Node = node,
            Version = "0.1.0",
            StartedAt = TimeProvider.System.GetUtcNow().AddMinutes(-3),
            Labels = new Dictionary<string, string> { ["zone"] = "a" },
            Session = session,
            Skew = 0.4,
            State = NodeRecord.Ready,
        });
        Assert.True((await consul.Client.Kv.PutStringAsync(cli.Layout.LockKey(ns, name), node, new KvPutOptions { Acquire = session }, Ct)).Value);
        return session;
    }

    [Fact]
    public async Task Get_tasks_json_has_the_documented_fields()
    {
        Apply(("ops", "backup", "1m"), ("web", "warm", "5m"));
        await PutAsync(cli.Layout.HistoryKey("ops", "backup", 1_773_144_000), Run(1_773_144_000, RunState.Succeeded, "node-a", 0));
        await PutAsync(cli.Layout.RunKey("ops", "backup"), Run(1_773_144_060, RunState.Failed, "node-b", 3));

        var run = cli.Run("get", "tasks", "-A", "-o", "json");

        Assert.Equal(0, run.ExitCode);
        using var json = JsonDocument.Parse(run.Output);
        var root = json.RootElement;
        Assert.Equal(("dtask.dev/v1alpha1", "ScheduledTaskList"), (root.GetProperty("apiVersion").GetString(), root.GetProperty("kind").GetString()));
        var items = root.GetProperty("items").EnumerateArray().ToList();
        Assert.Equal(["ops/backup", "web/warm"], items.Select(i => $"{i.GetProperty("namespace").GetString()}/{i.GetProperty("name").GetString()}"));
        var backup = items[0];
        Assert.Equal(["namespace", "name", "owner", "generation", "specHash", "schedule", "suspend", "spec", "status"], backup.EnumerateObject().Select(p => p.Name));
        Assert.Equal(("cli", 1, "every 1m", false), (backup.GetProperty("owner").GetString(), backup.GetProperty("generation").GetInt64(),
            backup.GetProperty("schedule").GetString(), backup.GetProperty("suspend").GetBoolean()));
        var status = backup.GetProperty("status");
        var lastRun = status.GetProperty("lastRun");
        Assert.Equal(("2026-03-10T12:01:00Z", "node-b", "failed", 3), (lastRun.GetProperty("slot").GetString(), lastRun.GetProperty("node").GetString(),
            lastRun.GetProperty("result").GetString(), lastRun.GetProperty("exitCode").GetInt32()));
        Assert.Equal("2026-03-10T12:00:04Z", status.GetProperty("lastSuccessfulTime").GetString());
        Assert.Equal(["Ready:True", "Synced:True"], status.GetProperty("conditions").EnumerateArray()
            .Select(c => $"{c.GetProperty("type").GetString()}:{c.GetProperty("status").GetString()}"));
        Assert.True(status.TryGetProperty("nextScheduleTime", out _));
    }

    [Fact]
    public async Task Get_tasks_table_shows_one_namespace_or_all_with_their_namespace()
    {
        Apply(("ops", "backup", "1m"), ("web", "warm", "5m"));
        await PutAsync(cli.Layout.RunKey("ops", "backup"), Run(TimeProvider.System.GetUtcNow().AddMinutes(-2).ToUnixTimeSeconds(), RunState.Succeeded, "node-a", 0));

        var ops = cli.Run("get", "tasks", "-n", "ops");
        var all = cli.Run("get", "tasks", "-A");
        var none = cli.Run("get", "tasks");

        Assert.Equal(0, ops.ExitCode);
        Assert.Matches(@"^NAME\s+SCHEDULE\s+SUSPEND\s+LAST RUN\s+NODE\s+RESULT\s+NEXT\s*$", ops.OutputLines[0]);
        Assert.Matches(@"^backup\s+every 1m\s+False\s+2m\d*s?\s+node-a\s+succeeded\s+in \d+s\s*$", ops.OutputLines[1]);
        Assert.Equal(2, ops.OutputLines.Count);
        Assert.Matches(@"^web/warm\s+every 5m\s+False\s+<none>\s+<none>\s+<none>\s+in ", all.OutputLines[2]);
        Assert.Equal((0, "", "No tasks found in namespace default.\n"), (none.ExitCode, none.Output, none.Error));
    }

    [Fact]
    public async Task Describe_shows_spec_owner_conditions_runs_and_the_live_lock_holder()
    {
        Apply(("ops", "backup", "1m"));
        var session = await RegisterNodeHoldingAsync("node-a", "ops", "backup");
        await PutAsync(cli.Layout.HistoryKey("ops", "backup", 1_773_144_000), Run(1_773_144_000, RunState.Failed, "node-b", 2));
        await PutAsync(cli.Layout.RunKey("ops", "backup"), Run(1_773_144_060, RunState.Running, "node-a"));

        var run = cli.Run("describe", "ops/backup");
        var missing = cli.Run("describe", "ops/nothing");

        Assert.Equal(0, run.ExitCode);
        Assert.Contains("Name:               backup\n", run.Output, StringComparison.Ordinal);
        Assert.Contains("Owner:              cli\n", run.Output, StringComparison.Ordinal);
        Assert.Contains("Generation:         1\n", run.Output, StringComparison.Ordinal);
        Assert.Contains("Schedule:           every 1m (UTC)\n", run.Output, StringComparison.Ordinal);
        Assert.Contains("Command:            /usr/local/bin/backup --quiet\n", run.Output, StringComparison.Ordinal);
        Assert.Contains($"Lock:               held by session {session} (executor node-a)\n", run.Output, StringComparison.Ordinal);
        Assert.Contains(run.OutputLines, l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^\s+Ready\s+True\s+Valid\s"));
        Assert.Contains(run.OutputLines, l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^\s+2026-03-10T12:01:00Z\s+node-a\s+running\s"));
        Assert.Contains(run.OutputLines, l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^\s+2026-03-10T12:00:00Z\s+node-b\s+failed\s.*\s2$"));
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("ops/nothing not found", missing.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Logs_prints_the_kept_output_of_the_last_or_a_given_run()
    {
        Apply(("ops", "backup", "1m"));
        var none = cli.Run("logs", "ops/backup");
        await PutAsync(cli.Layout.HistoryKey("ops", "backup", 1_773_144_000), Run(1_773_144_000, RunState.Succeeded, "node-a", 0, "first run\n"));
        await PutAsync(cli.Layout.RunKey("ops", "backup"), Run(1_773_144_060, RunState.Failed, "node-a", 1, "disk full"));

        var last = cli.Run("logs", "ops/backup");
        var older = cli.Run("logs", "ops/backup", "--slot", "1773144000");
        var unknown = cli.Run("logs", "ops/backup", "--slot", "42");

        Assert.Equal((1, "dtask logs: ops/backup has no runs in Consul\n"), (none.ExitCode, none.Error));
        Assert.Equal((0, "disk full\n"), (last.ExitCode, last.Output));
        Assert.Equal((0, "first run\n"), (older.ExitCode, older.Output));
        Assert.Equal(1, unknown.ExitCode);
    }

    [Fact]
    public async Task Trigger_writes_one_request_key_per_trigger_and_leaves_a_pending_stop_alone()
    {
        Apply(("ops", "backup", "1m"));
        var stopKey = cli.Layout.StopKey("ops", "backup", "1795829400-abc");
        await consul.Client.Kv.PutStringAsync(stopKey, "{}", cancellationToken: Ct);

        var first = cli.Run("trigger", "ops/backup");
        var second = cli.Run("trigger", "ops/backup");
        var missing = cli.Run("trigger", "ops/nothing");
        var describe = cli.Run("describe", "ops/backup");

        Assert.Equal(0, first.ExitCode);
        var printed = System.Text.RegularExpressions.Regex.Match(first.OutputLines[0], @"^scheduledtask\.dtask\.dev/ops/backup triggered \(request ([0-9a-f]{32}), #(\d+)\); the executors will pick it up$");
        Assert.True(printed.Success, first.Output);
        Assert.Equal(0, second.ExitCode);
        var pending = (await consul.Client.Kv.ListAsync(cli.Layout.TaskControlPrefix("ops", "backup"), cancellationToken: Ct)).Value;
        var triggers = pending.Where(p => p.Key.Contains("/trigger/", StringComparison.Ordinal)).OrderBy(p => p.CreateIndex).ToList();
        Assert.Equal(2, triggers.Count);
        var firstId = printed.Groups[1].Value;
        Assert.Equal(cli.Layout.TriggerKey("ops", "backup", firstId), triggers[0].Key);
        Assert.Equal(printed.Groups[2].Value, triggers[0].CreateIndex.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var request = StateJson.Deserialize<ControlRequest>(triggers[0].ValueAsString());
        Assert.Equal((ControlAction.Trigger, firstId), (request.Action, request.Id));
        Assert.Contains(pending, p => p.Key == stopKey);
        Assert.Equal(1, missing.ExitCode);
        Assert.Empty((await consul.Client.Kv.ListAsync(cli.Layout.TaskControlPrefix("ops", "nothing"), cancellationToken: Ct)).Value);
        Assert.Contains(describe.OutputLines, l => l.Contains("trigger", StringComparison.Ordinal) && l.Contains(firstId, StringComparison.Ordinal));
        Assert.Contains(describe.OutputLines, l => l.Contains("stop", StringComparison.Ordinal) && l.Contains("run 1795829400-abc", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Suspend_and_resume_bump_generation_and_refuse_a_directory_task_without_force()
    {
        Apply(("ops", "backup", "1m"));
        var original = KvTaskSpec.Parse((await consul.Client.Kv.GetAsync(cli.Layout.TaskKey("ops", "backup"), cancellationToken: Ct)).Value!.ValueAsString());

        var suspended = cli.Run("suspend", "ops/backup");
        var stored = KvTaskSpec.Parse((await consul.Client.Kv.GetAsync(cli.Layout.TaskKey("ops", "backup"), cancellationToken: Ct)).Value!.ValueAsString());
        var again = cli.Run("suspend", "ops/backup");
        var table = cli.Run("get", "tasks", "-n", "ops");
        var beforeResume = DateTimeOffset.UtcNow;
        var resumed = cli.Run("resume", "ops/backup");
        var afterResume = DateTimeOffset.UtcNow;
        var back = KvTaskSpec.Parse((await consul.Client.Kv.GetAsync(cli.Layout.TaskKey("ops", "backup"), cancellationToken: Ct)).Value!.ValueAsString());
        var described = cli.Run("describe", "ops/backup");

        Assert.Equal((0, "scheduledtask.dtask.dev/ops/backup suspended (generation 2)\n"), (suspended.ExitCode, suspended.Output));
        Assert.Equal((true, 2L, TaskJson.SpecHash(stored.Spec)), (stored.Spec.IsSuspended, stored.Generation, stored.SpecHash));
        Assert.Equal("scheduledtask.dtask.dev/ops/backup unchanged (already suspended)\n", again.Output);
        Assert.Matches(@"^backup\s+every 1m\s+True\s+<none>\s+<none>\s+<none>\s+<none>\s*$", table.OutputLines[1]);
        Assert.Equal((0, "scheduledtask.dtask.dev/ops/backup resumed (generation 3)\n"), (resumed.ExitCode, resumed.Output));
        Assert.Equal((false, 3L, original.SpecHash), (back.Spec.IsSuspended, back.Generation, back.SpecHash));
        Assert.Null(stored.ResumedAt);
        Assert.InRange(back.ResumedAt!.Value, beforeResume.AddSeconds(-1), afterResume.AddSeconds(1)); // executors ignore the slots before it
        Assert.Contains(described.OutputLines, l => l.StartsWith("Resumed:", StringComparison.Ordinal) && l.EndsWith("(slots of the suspension are not due)", StringComparison.Ordinal));

        await new TaskReconciler(consul.Client, cli.Layout).ReconcileAsync(TaskOwner.Directory("/srv/tasks"),
            ManifestReader.ReadText(TaskManifests.Yaml("ops", "gitops"), "x.yaml"), cancellationToken: Ct);
        var refused = cli.Run("suspend", "ops/gitops");
        var forced = cli.Run("suspend", "ops/gitops", "--force");
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("ops/gitops is owned by dir:/srv/tasks; its next reconcile would revert this", refused.Error, StringComparison.Ordinal);
        Assert.Equal(0, forced.ExitCode);
        Assert.Contains("note: ops/gitops is owned by dir:/srv/tasks", forced.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Get_nodes_lists_live_executors_and_the_tasks_they_run()
    {
        Apply(("ops", "backup", "1m"));
        var session = await RegisterNodeHoldingAsync("node-a", "ops", "backup");

        var table = cli.Run("get", "nodes");
        var json = cli.Run("get", "nodes", "-o", "json");

        Assert.Equal(0, table.ExitCode);
        Assert.Matches(@"^NODE\s+STATE\s+SKEW\s+LABELS\s+VERSION\s+STARTED\s+RUNNING\s*$", table.OutputLines[0]);
        Assert.Matches(@"^node-a\s+ready\s+\+0\.4s\s+zone=a\s+0\.1\.0\s+3m\d*s? ago\s+ops/backup\s*$", table.OutputLines[1]);
        using var document = JsonDocument.Parse(json.Output);
        var node = Assert.Single(document.RootElement.GetProperty("items").EnumerateArray().ToList());
        Assert.Equal(["node", "labels", "version", "startedAt", "session", "running", "skew", "state"], node.EnumerateObject().Select(p => p.Name));
        Assert.Equal((session, "ops/backup"), (node.GetProperty("session").GetString(), node.GetProperty("running")[0].GetString()));
    }

    [Fact]
    public void Get_tasks_yaml_is_the_json_document_as_yaml()
    {
        Apply(("ops", "backup", "1m"));

        var run = cli.Run("get", "tasks", "-n", "ops", "-o", "yaml");

        Assert.Equal(0, run.ExitCode);
        Assert.StartsWith("apiVersion: dtask.dev/v1alpha1\nkind: ScheduledTaskList\nitems:\n- namespace: ops\n  name: backup\n  owner: cli\n", run.Output, StringComparison.Ordinal);
    }
}
