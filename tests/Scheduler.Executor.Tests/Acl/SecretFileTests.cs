using Dtask.Consul.Kv;
using Dtask.Core.Model;
using Dtask.Executor.Tests.Cli;
using Dtask.Executor.Tests.Daemon;
using Dtask.Executor.Tests.Support;

namespace Dtask.Executor.Tests.Acl;

/// <summary>
/// <c>env[].valueFrom.file</c>: the value is read on the node when the run starts, reaches the child, and is in no KV
/// value, log line or output record; a file that cannot be read fails the run naming the variable and the file.
/// </summary>
public sealed class SecretFileTests(ConsulFixture consul)
{
    [Fact]
    public async Task A_secret_from_a_file_reaches_the_child_and_nothing_else()
    {
        await using var world = new DaemonWorld(consul.Agent.Address, consul.NewClient());
        var secret = "s3cr3t-" + Guid.NewGuid().ToString("N");
        var secretFile = world.PathOf("token");
        await File.WriteAllTextAsync(secretFile, secret + "\n", TestContext.Current.CancellationToken);
        var seen = world.PathOf("seen");
        var executor = world.Start("node-0");
        await executor.ReadyAsync();

        var task = await world.PutTaskAsync("secret", new ScheduledTaskSpec
        {
            Every = "1s",
            Shell = $"printf '%s\\n' \"$API_TOKEN\" >> {seen}; echo \"length ${{#API_TOKEN}}\"",
            Env = [new EnvVar { Name = "API_TOKEN", ValueFrom = new EnvVarSource { File = secretFile } }],
        });
        var missing = await world.PutTaskAsync("missing", new ScheduledTaskSpec
        {
            Every = "1s",
            Shell = "true",
            Env = [new EnvVar { Name = "DB_PASSWORD", ValueFrom = new EnvVarSource { File = world.PathOf("absent") } }],
        });

        Assert.True(await Eventually.TrueAsync(() => world.ReadLines("seen").Length >= 2, TimeSpan.FromSeconds(30)), "the task did not run:\n" + executor.Output);
        Assert.True(await Eventually.TrueAsync(() => world.HistoryAsync(missing).GetAwaiter().GetResult().Count > 0, TimeSpan.FromSeconds(30)),
            "the task with a missing secret file recorded no run:\n" + executor.Output);
        Assert.True(await Eventually.TrueAsync(() => world.HistoryAsync(task).GetAwaiter().GetResult().Count >= 2, TimeSpan.FromSeconds(30)));
        var history = await DtaskProcess.RunAsync("history", "ops/secret", "-o", "json", "--prefix", world.Prefix, "--consul", world.Consul.ToString());
        var logs = await DtaskProcess.RunAsync("logs", "ops/secret", "--prefix", world.Prefix, "--consul", world.Consul.ToString());
        Assert.Equal(0, await executor.StopAsync());

        Assert.All(world.ReadLines("seen"), line => Assert.Equal(secret, line));
        var failed = (await world.HistoryAsync(missing))[0];
        Assert.Contains($"env DB_PASSWORD: valueFrom file '{world.PathOf("absent")}' cannot be read", failed.Reason ?? "", StringComparison.Ordinal);
        var everything = (await world.Client.Kv.ListAsync(world.Prefix, cancellationToken: TestContext.Current.CancellationToken)).Value;
        Assert.DoesNotContain(everything, pair => pair.ValueAsString().Contains(secret, StringComparison.Ordinal));
        Assert.Contains(everything, pair => pair.ValueAsString().Contains(secretFile, StringComparison.Ordinal)); // the path is in the spec, not the value
        Assert.DoesNotContain(secret, executor.Output, StringComparison.Ordinal);
        Assert.DoesNotContain(secret, history.Output + history.Error + logs.Output + logs.Error, StringComparison.Ordinal);
        Assert.Contains("length " + secret.Length, logs.Output + executor.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_value_the_operator_resolved_from_a_Kubernetes_Secret_reaches_the_child_and_no_run_record_log_or_output_but_the_spec()
    {
        await using var world = new DaemonWorld(consul.Agent.Address, consul.NewClient());
        var secret = "k8s-s3cr3t-" + Guid.NewGuid().ToString("N");
        var seen = world.PathOf("seen");
        var executor = world.Start("node-0");
        await executor.ReadyAsync();

        // The spec as `dtask operator --source kubernetes --resolve-secrets` writes it: the reference and the value.
        var task = await world.PutTaskAsync("resolved", new ScheduledTaskSpec
        {
            Every = "1s",
            Shell = $"printf '%s\\n' \"$DB_PASSWORD\" >> {seen}; echo \"length ${{#DB_PASSWORD}}\"",
            Env = [new EnvVar { Name = "DB_PASSWORD", Value = secret, ValueFrom = new EnvVarSource { SecretKeyRef = new SecretKeySelector { Name = "db", Key = "password" } } }],
        });

        Assert.True(await Eventually.TrueAsync(() => world.ReadLines("seen").Length >= 2, TimeSpan.FromSeconds(30)), "the task did not run:\n" + executor.Output);
        Assert.True(await Eventually.TrueAsync(() => world.HistoryAsync(task).GetAwaiter().GetResult().Count >= 2, TimeSpan.FromSeconds(30)));
        string[] at = ["--prefix", world.Prefix, "--consul", world.Consul.ToString()];
        var outputs = new List<DtaskExit>();
        foreach (var command in (string[][])[["history", "ops/resolved", "-o", "json"], ["logs", "ops/resolved"], ["describe", "ops/resolved"],
                     ["get", "tasks", "-n", "ops", "-o", "json"], ["get", "tasks", "-n", "ops", "-o", "yaml"]])
        {
            outputs.Add(await DtaskProcess.RunAsync([.. command, .. at]));
        }

        Assert.Equal(0, await executor.StopAsync());

        Assert.All(world.ReadLines("seen"), line => Assert.Equal(secret, line));
        Assert.All(outputs, o => Assert.True(o.ExitCode == 0, o.Error));
        Assert.DoesNotContain(secret, executor.Output, StringComparison.Ordinal);
        Assert.DoesNotContain(secret, string.Concat(outputs.Select(o => o.Output + o.Error)), StringComparison.Ordinal);
        Assert.Contains("secretKeyRef", outputs[3].Output, StringComparison.Ordinal); // the reference is shown, not the value
        Assert.Contains("length " + secret.Length, outputs[1].Output + executor.Output, StringComparison.Ordinal);

        // In Consul the value is in the spec (as docs/operations.md says), and in nothing the runs wrote.
        var everything = (await world.Client.Kv.ListAsync(world.Prefix, cancellationToken: TestContext.Current.CancellationToken)).Value;
        var holding = everything.Where(pair => pair.ValueAsString().Contains(secret, StringComparison.Ordinal)).Select(pair => pair.Key).ToList();
        Assert.Equal([world.Prefix + "tasks/ops/resolved"], holding);
    }
}
