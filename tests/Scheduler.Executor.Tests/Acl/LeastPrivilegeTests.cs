using Dtask.Consul.Configuration;
using Dtask.Consul.Errors;
using Dtask.Consul.Sessions;
using Dtask.Executor.Tests.Daemon;
using Dtask.Executor.Tests.Support;
using Dtask.Testing;

namespace Dtask.Executor.Tests.Acl;

/// <summary>
/// The policies of <c>deploy/acl/</c> (the ones docs/operations.md shows), on an agent with default-deny ACLs and
/// tokens made with the <c>consul</c> command line: the daemons work with exactly those tokens, and each token is
/// refused (exit 77, the refused key named, nothing changed) when it reaches for what it must not.
/// </summary>
public sealed class LeastPrivilegeTests(AclFleetFixture acl) : IClassFixture<AclFleetFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task An_operator_and_two_executors_run_a_task_with_exactly_their_tokens_and_an_executor_token_cannot_change_what_runs_or_register_as_another_node()
    {
        // The operator's leader-lock session is on the agent's node; each executor's sessions are on a catalog node of
        // its own (--session-node), as terraform/modules/nodes registers them.
        var operatorToken = await acl.TokenAsync("operator.hcl", "dtask-operator", new Dictionary<string, string> { ["consul_node"] = await acl.AgentNodeAsync() });
        await acl.RegisterCatalogNodeAsync("node-a");
        await acl.RegisterCatalogNodeAsync("node-b");
        var tokenA = await acl.TokenAsync("executor.hcl", "dtask-executor-node-a", new Dictionary<string, string> { ["node"] = "node-a", ["consul_node"] = "node-a" });
        var tokenB = await acl.TokenAsync("executor.hcl", "dtask-executor-node-b", new Dictionary<string, string> { ["node"] = "node-b", ["consul_node"] = "node-b" });
        using var folder = new TempDirectory("dtask-acl-");
        var ran = Path.Combine(folder.Path, "ran");
        var injected = Path.Combine(folder.Path, "injected");
        var manifests = Directory.CreateDirectory(Path.Combine(folder.Path, "manifests")).FullName;
        await File.WriteAllTextAsync(Path.Combine(manifests, "tick.yaml"), Yaml("ops", "tick", $"echo \"$DTASK_SLOT $DTASK_NODE\" >> {ran}"), Ct);
        var attack = Path.Combine(folder.Path, "injected.yaml");
        await File.WriteAllTextAsync(attack, Yaml("ops", "injected", $"echo pwned >> {injected}"), Ct);
        using var master = acl.Master();

        await using var operatorProcess = OperatorProcess.Start(acl.Agent.Address, manifests, operatorToken);
        await using var a = ExecutorProcess.Start(acl.Agent.Address, "dtask/", "node-a", AclFleetFixture.WithToken(tokenA), "--session-node", "node-a");
        await using var b = ExecutorProcess.Start(acl.Agent.Address, "dtask/", "node-b", AclFleetFixture.WithToken(tokenB), "--session-node", "node-b");
        await a.ReadyAsync();
        await b.ReadyAsync();

        // The fleet works: the operator wrote the spec, the executors claim, run and record its slots.
        Assert.True(await Eventually.TrueAsync(() => Lines(ran).Length >= 3, TimeSpan.FromSeconds(60)),
            $"the task did not run three times with the documented tokens\noperator:\n{operatorProcess.Output}\nnode-a:\n{a.Output}\nnode-b:\n{b.Output}");
        var spec = (await master.Kv.GetAsync("dtask/tasks/ops/tick", cancellationToken: Ct)).Value!;
        Assert.NotNull((await master.Kv.GetAsync("dtask/state/ops/tick/run", cancellationToken: Ct)).Value);
        Assert.NotNull((await master.Kv.GetAsync("dtask/nodes/node-a", cancellationToken: Ct)).Value);

        // An executor's token cannot write a task spec: not a new one, not a change to one that runs.
        var apply = await acl.DtaskAsync(tokenA, "apply", "-f", attack);
        var suspend = await acl.DtaskAsync(tokenA, "suspend", "ops/tick", "--force");
        Assert.True(apply.ExitCode == 77, $"apply: {apply.ExitCode}\n{apply.Output}\n{apply.Error}");
        Assert.Contains("permission denied", apply.Error, StringComparison.Ordinal);
        Assert.Contains("'dtask/tasks/ops/injected'", apply.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("created", apply.Output, StringComparison.Ordinal);
        Assert.True(suspend.ExitCode == 77, $"suspend: {suspend.ExitCode}\n{suspend.Output}\n{suspend.Error}");
        Assert.Contains("'dtask/tasks/ops/tick'", suspend.Error, StringComparison.Ordinal);
        Assert.Null((await master.Kv.GetAsync("dtask/tasks/ops/injected", cancellationToken: Ct)).Value);
        Assert.Equal(spec.ModifyIndex, (await master.Kv.GetAsync("dtask/tasks/ops/tick", cancellationToken: Ct)).Value!.ModifyIndex);

        // Nor touch another node's sessions: node-a's token can neither destroy nor renew node-b's live sessions, nor
        // create one on node-b or on the agent's node; node-b's sessions stay as they were.
        var sessions = (await master.Sessions.ListAsync(cancellationToken: Ct)).Value;
        var ofB = sessions.Where(s => s.Node == "node-b").ToList();
        Assert.Equal(2, ofB.Count); // claims and registration
        Assert.Equal(2, sessions.Count(s => s.Node == "node-a"));
        using (var asNodeA = acl.Agent.CreateClient(new ConsulToken(tokenA)))
        {
            foreach (var session in ofB)
            {
                var destroy = await Assert.ThrowsAsync<ConsulPermissionDeniedException>(() => asNodeA.Sessions.DestroyAsync(session.Id, Ct));
                var renew = await Assert.ThrowsAsync<ConsulPermissionDeniedException>(() => asNodeA.Sessions.RenewAsync(session.Id, Ct));
                Assert.Contains("permission denied", destroy.Message + renew.Message, StringComparison.OrdinalIgnoreCase);
            }

            await Assert.ThrowsAsync<ConsulPermissionDeniedException>(() => asNodeA.Sessions.CreateAsync(new SessionRequest("impostor", TimeSpan.FromSeconds(10)) { Node = "node-b" }, Ct));
            await Assert.ThrowsAsync<ConsulPermissionDeniedException>(() => asNodeA.Sessions.CreateAsync(new SessionRequest("impostor", TimeSpan.FromSeconds(10)), Ct));
        }

        var stillB = (await master.Sessions.ListAsync(cancellationToken: Ct)).Value.Where(s => s.Node == "node-b").ToList();
        Assert.Equal(ofB.Select(s => (s.Id, s.ModifyIndex)).Order(), stillB.Select(s => (s.Id, s.ModifyIndex)).Order());

        // Nor register as another node.
        await using var impostor = ExecutorProcess.Start(acl.Agent.Address, "dtask/", "node-c", AclFleetFixture.WithToken(tokenA), "--session-node", "node-a");
        Assert.Equal(77, await impostor.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        Assert.Contains("'dtask/nodes/node-c'", impostor.Output, StringComparison.Ordinal);
        Assert.Contains("permission denied", impostor.Output, StringComparison.Ordinal);
        Assert.Null((await master.Kv.GetAsync("dtask/nodes/node-c", cancellationToken: Ct)).Value);

        // The fleet kept running the one task, never the injected one; both executors stop cleanly.
        var before = Lines(ran).Length;
        Assert.True(await Eventually.TrueAsync(() => Lines(ran).Length > before, TimeSpan.FromSeconds(30)), "the task stopped running");
        Assert.Equal(0, await a.StopAsync());
        Assert.Equal(0, await b.StopAsync());
        Assert.Equal(0, await operatorProcess.StopAsync());
        Assert.False(File.Exists(injected));
        Assert.DoesNotContain("permission denied", a.Output + b.Output + operatorProcess.Output, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task A_tenant_token_works_in_its_namespace_and_every_command_reaching_beyond_it_exits_77_naming_the_key()
    {
        var admin = await acl.TokenAsync("admin.hcl", "dtask-admin");
        var teamA = await acl.TokenAsync("tenant.hcl", "dtask-tenant-team-a", new Dictionary<string, string> { ["namespace"] = "team-a" });
        using var folder = new TempDirectory("dtask-acl-");
        var own = folder.Write("own.yaml", Yaml("team-a", "job", "true"));
        var theirs = folder.Write("theirs.yaml", Yaml("team-b", "report", "true"));
        var intruder = folder.Write("intruder.yaml", Yaml("team-b", "intruder", "true"));
        using var master = acl.Master();
        Assert.Equal(0, (await acl.DtaskAsync(admin, "apply", "-f", theirs)).ExitCode);
        var report = (await master.Kv.GetAsync("dtask/tasks/team-b/report", cancellationToken: Ct)).Value!;

        // In its own namespace the token applies, triggers, suspends and reads.
        var applied = await acl.DtaskAsync(teamA, "apply", "-f", own);
        Assert.True(applied.ExitCode == 0, applied.Error);
        Assert.Contains("team-a/job created", applied.Output, StringComparison.Ordinal);
        foreach (var arguments in (string[][])[["trigger", "team-a/job"], ["suspend", "team-a/job"], ["describe", "team-a/job"], ["get", "tasks", "-n", "team-a"], ["get", "nodes"]])
        {
            var exit = await acl.DtaskAsync(teamA, arguments);
            Assert.True(exit.ExitCode == 0, $"dtask {string.Join(' ', arguments)}: exit {exit.ExitCode}\n{exit.Output}\n{exit.Error}");
        }

        var listed = await acl.DtaskAsync(teamA, "get", "tasks", "-A");
        Assert.True(listed.ExitCode == 0, listed.Error);
        Assert.Contains("team-a/job", listed.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("team-b", listed.Output, StringComparison.Ordinal);

        // Beyond it, every command is refused with exit 77 and the key it was refused.
        (string[] Arguments, string Key)[] refused =
        [
            (["apply", "-f", intruder], "dtask/tasks/team-b/intruder"),
            (["trigger", "team-b/report"], "dtask/tasks/team-b/report"),
            (["suspend", "team-b/report", "--force"], "dtask/tasks/team-b/report"),
            (["resume", "team-b/report", "--force"], "dtask/tasks/team-b/report"),
            (["delete", "team-b/report", "--force"], "dtask/tasks/team-b/report"),
            (["describe", "team-b/report"], "dtask/tasks/team-b/report"),
            (["history", "team-b/report"], "dtask/state/team-b/report/run"),
            (["get", "tasks", "-n", "team-b"], "dtask/tasks/team-b/"),
        ];
        foreach (var (arguments, key) in refused)
        {
            var exit = await acl.DtaskAsync(teamA, arguments);
            var what = $"dtask {string.Join(' ', arguments)}: exit {exit.ExitCode}\n{exit.Output}\n{exit.Error}";
            Assert.True(exit.ExitCode == 77, what);
            Assert.Contains($"'{key}'", exit.Error, StringComparison.Ordinal);
            Assert.Contains("permission denied", exit.Error, StringComparison.Ordinal);
            Assert.DoesNotContain("   at ", exit.Error, StringComparison.Ordinal);
            Assert.DoesNotContain(teamA, exit.Output + exit.Error, StringComparison.Ordinal);
        }

        // Nothing of team-b changed.
        Assert.Null((await master.Kv.GetAsync("dtask/tasks/team-b/intruder", cancellationToken: Ct)).Value);
        Assert.Equal(report.ModifyIndex, (await master.Kv.GetAsync("dtask/tasks/team-b/report", cancellationToken: Ct)).Value!.ModifyIndex);
        Assert.Empty((await master.Kv.KeysAsync("dtask/control/team-b/", cancellationToken: Ct)).Value);
    }

    [Fact]
    public async Task In_the_admin_owned_mode_a_node_takes_its_labels_from_a_key_its_token_cannot_write()
    {
        var admin = await acl.TokenAsync("admin.hcl", "dtask-admin-labels");
        // Without --session-node the sessions are on the node of the agent the executor talks to.
        var token = await acl.TokenAsync("executor.hcl", "dtask-executor-node-l", new Dictionary<string, string> { ["node"] = "node-l", ["consul_node"] = await acl.AgentNodeAsync() });
        using var master = acl.Master();
        await master.Kv.PutStringAsync("dtask/node-labels/node-l", "role=storage,zone=b", cancellationToken: Ct);
        var labels = (await master.Kv.GetAsync("dtask/node-labels/node-l", cancellationToken: Ct)).Value!;

        await using var executor = ExecutorProcess.Start(acl.Agent.Address, "dtask/", "node-l", AclFleetFixture.WithToken(token), "--labels-from-consul");
        await executor.ReadyAsync();
        var nodes = await acl.DtaskAsync(admin, "get", "nodes");

        // The node cannot give itself labels: not by writing the key, not by --labels next to --labels-from-consul.
        var write = await acl.ConsulAsync(token, "kv", "put", "dtask/node-labels/node-l", "role=storage,zone=b,gpu=true");
        var other = await acl.ConsulAsync(token, "kv", "put", "dtask/node-labels/node-x", "role=storage");
        await using var both = ExecutorProcess.Start(acl.Agent.Address, "dtask/", "node-l", AclFleetFixture.WithToken(token), "--labels-from-consul", "--labels", "gpu=true");

        Assert.True(nodes.ExitCode == 0, nodes.Error);
        Assert.Matches(@"node-l\s+ready\s+\S+\s+role=storage,zone=b\s", nodes.Output);
        Assert.NotEqual(0, write.ExitCode);
        Assert.Contains("Permission denied", write.Error, StringComparison.Ordinal);
        Assert.NotEqual(0, other.ExitCode);
        Assert.Equal(78, await both.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("--labels-from-consul: the labels come from Consul", both.Output, StringComparison.Ordinal);
        var after = (await master.Kv.GetAsync("dtask/node-labels/node-l", cancellationToken: Ct)).Value!;
        Assert.Equal((labels.ModifyIndex, "role=storage,zone=b"), (after.ModifyIndex, after.ValueAsString()));
        Assert.Null((await master.Kv.GetAsync("dtask/node-labels/node-x", cancellationToken: Ct)).Value);
        Assert.Equal(0, await executor.StopAsync());
    }

    [Fact]
    public async Task An_executor_whose_session_node_is_not_registered_yet_waits_and_joins_once_it_is()
    {
        // Terraform registers a node's consul_node only once the instance has an address: the executor may start first.
        var token = await acl.TokenAsync("executor.hcl", "dtask-executor-node-w", new Dictionary<string, string> { ["node"] = "node-w", ["consul_node"] = "node-w" });
        using var master = acl.Master();

        await using var executor = ExecutorProcess.Start(acl.Agent.Address, "dtask/", "node-w", AclFleetFixture.WithToken(token), "--session-node", "node-w");
        Assert.True(await executor.WaitForAsync("Missing node registration", TimeSpan.FromSeconds(60)), executor.Output);
        Assert.False(executor.HasExited, executor.Output);
        await acl.RegisterCatalogNodeAsync("node-w");
        await executor.ReadyAsync();

        Assert.NotNull((await master.Kv.GetAsync("dtask/nodes/node-w", cancellationToken: Ct)).Value);
        Assert.Equal(2, (await master.Sessions.ListAsync(cancellationToken: Ct)).Value.Count(s => s.Node == "node-w"));
        Assert.Equal(0, await executor.StopAsync());
    }

    private static string Yaml(string ns, string name, string shell) => $"""
        apiVersion: dtask.dev/v1alpha1
        kind: ScheduledTask
        metadata:
          name: {name}
          namespace: {ns}
        spec:
          every: 1s
          shell: '{shell.Replace("'", "''", StringComparison.Ordinal)}'
        """;

    private static string[] Lines(string path) => File.Exists(path) ? File.ReadAllLines(path) : [];
}
