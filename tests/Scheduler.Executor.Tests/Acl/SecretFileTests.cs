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
}
