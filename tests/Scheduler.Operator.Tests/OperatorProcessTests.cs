using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Dtask.Core.Manifests;
using Dtask.Core.State;
using Dtask.Operator.Sources.Directory;
using Dtask.Operator.Tests.Support;

namespace Dtask.Operator.Tests;

/// <summary>Two real <c>dtask operator --source dir:…</c> processes on the real agent, with a real SIGSTOP.</summary>
public sealed class OperatorProcessTests(ConsulFixture consul) : IDisposable
{
    // The first replica's session expires up to twice its TTL (15 s) after its last renewal, its lock-delay (15 s)
    // follows, and the waiting replica retries the lock once the lock-delay is over or its blocking query on the
    // key ends (60 s).
    private static readonly TimeSpan Takeover = TimeSpan.FromSeconds(180);
    private readonly KvLayout layout = ConsulFixture.NewLayout();
    private readonly TempDirectory folder = new();
    private readonly List<OperatorProcess> processes = [];
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose()
    {
        foreach (var process in processes)
        {
            process.Dispose();
        }

        folder.Dispose();
    }

    private async Task<Dictionary<string, KvTaskSpec>> TasksAsync() =>
        (await consul.Client.Kv.ListAsync(layout.TasksPrefix, cancellationToken: Ct)).Value
            .ToDictionary(p => p.Key[layout.TasksPrefix.Length..], p => KvTaskSpec.Parse(p.ValueAsString()), StringComparer.Ordinal);

    private async Task<string?> LockHolderAsync() =>
        (await consul.Client.Kv.GetAsync(DirectorySourceOptions.DefaultLockKey(layout), cancellationToken: Ct)).Value is { Session: not null } pair
            ? pair.ValueAsString()
            : null;

    [Fact]
    public async Task A_stalled_leaders_delayed_write_never_lands_after_the_other_replica_took_over()
    {
        folder.Write("keep.yaml", Manifest.Yaml("ops", "keep"));
        await using var proxy = HoldingConsulProxy.Start(consul.Agent.Address);

        // The first replica talks to Consul through the proxy; it takes the lock and reconciles.
        var first = Start(proxy.Address);
        await Eventually.TrueAsync(() => first.Saw("Reconciled "), "the first replica's reconcile", Takeover);
        Assert.Contains($"/{first.Id.ToString(CultureInfo.InvariantCulture)}/", await LockHolderAsync(), StringComparison.Ordinal);
        var second = Start(consul.Agent.Address);
        await Eventually.TrueAsync(() => second.Saw("Waiting for the operator lock"), "the second replica to wait for the lock", Takeover);

        // A new file: the leader reconciles and sends its write, which the network delays; the leader stalls.
        proxy.Hold = (method, path) => method == "PUT" && path.StartsWith("/v1/txn", StringComparison.Ordinal);
        folder.Write("stale.yaml", Manifest.Yaml("ops", "stale"));
        await Eventually.TrueAsync(() => proxy.Held.Count == 1, "the first replica's write to be in flight", Takeover);
        Assert.True(ProcessSignal.Send(first.Id, ProcessSignal.Stop));

        // Meanwhile the directory changes back, and on: the second replica takes the lock once the first's session
        // has expired, and reconciles what the directory holds now.
        File.Delete(Path.Combine(folder.Path, "stale.yaml"));
        folder.Write("keep.yaml", Manifest.Yaml("ops", "keep", every: "5m"));
        string? holder = null;
        await Eventually.ReturnsAsync(async () =>
        {
            if (await LockHolderAsync() is var now && now != holder)
            {
                holder = now;
                TestContext.Current.TestOutputHelper?.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} lock held by {now ?? "nobody"}");
            }

            return await TasksAsync();
        }, t => t.TryGetValue("ops/keep", out var keep) && keep.Spec.Every == "5m", "the second replica to take over and reconcile", Takeover);
        Assert.Contains($"/{second.Id.ToString(CultureInfo.InvariantCulture)}/", await LockHolderAsync(), StringComparison.Ordinal);

        // The delayed write reaches Consul now, and the first replica wakes up.
        Assert.Equal(1, proxy.Release(_ => true));
        var answer = await Eventually.ReturnsAsync(() => Task.FromResult(proxy.Answered.FirstOrDefault(a => a.StartsWith("PUT /v1/txn", StringComparison.Ordinal))),
            a => a is not null, "Consul's answer to the delayed write");
        Assert.EndsWith("-> 409", answer, StringComparison.Ordinal);
        Assert.True(ProcessSignal.Send(first.Id, ProcessSignal.Continue));
        await Eventually.TrueAsync(() => first.Saw("Lost leadership of") || first.Saw("Lost the operator lock"), "the first replica to log that it lost leadership", Takeover);

        var tasks = await TasksAsync();
        Assert.Equal(["ops/keep"], tasks.Keys);
        Assert.Equal("5m", tasks["ops/keep"].Spec.Every);
        Assert.Equal(TaskOwner.Directory(folder.Path), tasks["ops/keep"].Owner);
        Assert.False(second.HasExited);
    }

    [Fact]
    public async Task A_bad_file_among_good_ones_leaves_the_operator_running_the_good_ones_reconciled_and_the_broken_ones_kept_and_reported()
    {
        folder.Write("good.yaml", Manifest.Yaml("ops", "good"));
        var later = folder.Write("later.yaml", Manifest.Yaml("ops", "later"));
        var process = Start(consul.Agent.Address);
        await Eventually.ReturnsAsync(TasksAsync, t => t.ContainsKey("ops/good") && t.ContainsKey("ops/later"), "the first reconcile", Takeover);

        // later.yaml becomes 50 000 nested sequences (which once overflowed the stack), beside a new good file and a
        // file broken in another way.
        folder.Write("later.yaml", Manifest.Yaml("ops", "later") + "\n  env: " + new string('[', 50_000) + "\n");
        var unclosed = folder.Write("unclosed.yaml", "apiVersion: dtask.dev/v1alpha1\nkind: ScheduledTask\nmetadata: {name: u, namespace: ops\nspec: [every: 1m\n");
        folder.Write("new.yaml", Manifest.Yaml("ops", "new", every: "3m"));
        var tasks = await Eventually.ReturnsAsync(TasksAsync, t => t.ContainsKey("ops/new"), "the good new file reconciled", Takeover);

        Assert.Equal(("1m", 1L), (tasks["ops/later"].Spec.Every, tasks["ops/later"].Generation));
        Assert.Equal("1m", tasks["ops/good"].Spec.Every);
        await Eventually.TrueAsync(() => process.Saw($"Cannot read {later}: {later}[0]: invalid YAML: line 9, column "), "the log line of later.yaml", Takeover);
        Assert.True(process.Saw($"Cannot read {unclosed}: {unclosed}[0]: invalid YAML: line 3, column 30: "), "the log line of unclosed.yaml");

        // get tasks and describe show it.
        var get = await DtaskAsync("get", "tasks", "-n", "ops");
        Assert.Equal(0, get.ExitCode);
        Assert.Contains($"ops/later: Ready=False: {later}[0]: invalid YAML: line 9, column ", get.Error, StringComparison.Ordinal);
        Assert.Contains("collections nest deeper than 32 levels; Consul keeps generation 1", get.Error, StringComparison.Ordinal);
        var describe = await DtaskAsync("describe", "ops/later");
        Assert.Equal(0, describe.ExitCode);
        Assert.Matches(@"Ready\s+False\s+Invalid\s+\S*later\.yaml\[0\]: invalid YAML: line 9, column \d+: collections nest deeper", describe.Output);

        // Fixed: reconciled, still the same process.
        folder.Write("later.yaml", Manifest.Yaml("ops", "later", every: "7m"));
        await Eventually.ReturnsAsync(TasksAsync, t => t["ops/later"].Spec.Every == "7m", "the fixed file reconciled", Takeover);
        await Eventually.TrueAsync(() => process.Saw($"{later} reads again"), "the log line of the fixed file", Takeover);
        Assert.False(process.HasExited);
    }

    [Fact]
    public async Task Garbage_in_its_keys_leaves_the_operator_reconciling_and_the_cli_reading()
    {
        // Garbage where the operator and the CLI read: a task key no file declares, a problems/ key, the run record and
        // history of a declared task, a node registration, a control request.
        var deep = new string('[', 100_000);
        await consul.Client.Kv.PutStringAsync(layout.TaskKey("ops", "junk"), deep, cancellationToken: Ct);
        await consul.Client.Kv.PutStringAsync(layout.Prefix + "problems/ops/good", "{\"owner\":7,\"errors\":null}", cancellationToken: Ct);
        await consul.Client.Kv.PutStringAsync(layout.RunKey("ops", "good"), "{\"slot\":\"x\",\"runId\":null}", cancellationToken: Ct);
        await consul.Client.Kv.PutStringAsync(layout.HistoryKey("ops", "good", 1), "\u00ff not json " + deep, cancellationToken: Ct);
        await consul.Client.Kv.PutStringAsync(layout.NodeKey("ghost"), "[1,2,3]", cancellationToken: Ct);
        await consul.Client.Kv.PutStringAsync(layout.TriggerKey("ops", "good", "junk"), "{\"action\":7}", cancellationToken: Ct);
        folder.Write("good.yaml", Manifest.Yaml("ops", "good"));
        var process = Start(consul.Agent.Address);
        await Eventually.ReturnsAsync(ReadableTasksAsync, t => t.ContainsKey("ops/good"), "the first reconcile", Takeover);

        folder.Write("new.yaml", Manifest.Yaml("ops", "new", every: "3m"));
        folder.Write("good.yaml", Manifest.Yaml("ops", "good", every: "5m"));
        var tasks = await Eventually.ReturnsAsync(ReadableTasksAsync, t => t.ContainsKey("ops/new") && t["ops/good"].Spec.Every == "5m", "the changes reconciled", Takeover);
        Assert.Equal("3m", tasks["ops/new"].Spec.Every);
        Assert.False(process.HasExited);
        Assert.False(process.Saw("   at "), "a stack trace in the operator's log");
        Assert.Equal(1, process.Count(layout.TaskKey("ops", "junk") + " (index")); // Logged once, though read on every pass.

        var junk = await DtaskAsync("describe", "ops/junk");
        Assert.Equal(1, junk.ExitCode);
        Assert.Contains("holds no readable task spec", junk.Error, StringComparison.Ordinal);
        foreach (var arguments in (string[][])[["get", "tasks", "-n", "ops"], ["describe", "ops/good"], ["history", "ops/good"], ["get", "nodes"]])
        {
            var cli = await DtaskAsync(arguments);
            Assert.True(cli.ExitCode == 0, $"dtask {string.Join(' ', arguments)}: exit {cli.ExitCode}\n{cli.Output}{cli.Error}");
            Assert.DoesNotContain("   at ", cli.Output + cli.Error, StringComparison.Ordinal);
            if (arguments is ["get", "tasks", ..])
            {
                Assert.Contains($"'{layout.TaskKey("ops", "junk")}' holds no readable task spec; skipped", cli.Error, StringComparison.Ordinal);
            }

            if (arguments is ["get", "nodes"])
            {
                Assert.Contains($"'{layout.NodeKey("ghost")}' holds no node registration", cli.Error, StringComparison.Ordinal);
            }

            if (arguments[0] == "history")
            {
                Assert.Contains($"'{layout.HistoryKey("ops", "good", 1)}' holds no run record; skipped", cli.Error, StringComparison.Ordinal);
                Assert.Contains($"'{layout.RunKey("ops", "good")}' holds no run record; skipped", cli.Error, StringComparison.Ordinal);
            }
        }
    }

    private async Task<Dictionary<string, KvTaskSpec>> ReadableTasksAsync() =>
        (await consul.Client.Kv.ListAsync(layout.TasksPrefix, cancellationToken: Ct)).Value
            .Select(p => (Key: p.Key[layout.TasksPrefix.Length..], Task: StateJson.TryDeserialize<KvTaskSpec>(p.ValueAsString())))
            .Where(p => p.Task is not null)
            .ToDictionary(p => p.Key, p => p.Task!, StringComparer.Ordinal);

    private async Task<(int ExitCode, string Output, string Error)> DtaskAsync(params string[] arguments)
    {
        var start = new ProcessStartInfo(DtaskBuild.DotnetHost())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in (string[])["exec", DtaskBuild.Dll(), .. arguments, "--consul", consul.Agent.Address.ToString(), "--prefix", layout.Prefix])
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment.Remove("CONSUL_HTTP_ADDR");
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync(Ct);
        var error = process.StandardError.ReadToEndAsync(Ct);
        await process.WaitForExitAsync(Ct);
        TestContext.Current.TestOutputHelper?.WriteLine($"dtask {string.Join(' ', arguments)}: exit {process.ExitCode}\n{await output}{await error}");
        return (process.ExitCode, await output, await error);
    }

    private OperatorProcess Start(Uri consulAddress)
    {
        var process = OperatorProcess.Start(consulAddress, layout.Prefix, folder.Path);
        processes.Add(process);
        return process;
    }

    /// <summary>A <c>dtask operator</c> process whose log lines are kept (and echoed to the test output).</summary>
    private sealed class OperatorProcess : IDisposable
    {
        private readonly Process process;
        private readonly ConcurrentQueue<string> lines = new();

        private OperatorProcess(Process process) => this.process = process;

        public int Id => process.Id;

        public bool HasExited => process.HasExited;

        public bool Saw(string text) => lines.Any(l => l.Contains(text, StringComparison.Ordinal));

        public int Count(string text) => lines.Count(l => l.Contains(text, StringComparison.Ordinal));

        public static OperatorProcess Start(Uri consulAddress, string prefix, string directory)
        {
            var start = new ProcessStartInfo(DtaskBuild.DotnetHost())
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (var argument in (string[])["exec", DtaskBuild.Dll(), "operator", "--source", "dir:" + directory,
                         "--consul", consulAddress.ToString(), "--prefix", prefix])
            {
                start.ArgumentList.Add(argument);
            }

            start.Environment["DTASK_LOG_FORMAT"] = "console";
            start.Environment.Remove("CONSUL_HTTP_ADDR");
            var operatorProcess = new OperatorProcess(new Process { StartInfo = start });
            var output = TestContext.Current.TestOutputHelper;
            void Line(object? sender, DataReceivedEventArgs e)
            {
                if (e.Data is { } line)
                {
                    operatorProcess.lines.Enqueue(line);
                    try
                    {
                        output?.WriteLine($"[operator {((Process)sender!).Id}] {line}");
                    }
                    catch (InvalidOperationException)
                    {
                        // The test has finished.
                    }
                }
            }

            operatorProcess.process.OutputDataReceived += Line;
            operatorProcess.process.ErrorDataReceived += Line;
            operatorProcess.process.Start();
            operatorProcess.process.BeginOutputReadLine();
            operatorProcess.process.BeginErrorReadLine();
            return operatorProcess;
        }

        public void Dispose()
        {
            if (!process.HasExited)
            {
                ProcessSignal.Send(process.Id, ProcessSignal.Continue);
                process.Kill(entireProcessTree: true);
                process.WaitForExit(5000);
            }

            process.Dispose();
        }
    }
}
