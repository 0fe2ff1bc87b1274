using Dtask.Core.Manifests;
using Dtask.Operator.Reconciliation;

namespace Dtask.Cli.Tests.Tasks;

public sealed class ApplyCommandTests(TaskCommandsFixture consul) : IDisposable
{
    private readonly TaskCli cli = new(consul);
    private readonly TempDirectory folder = new();
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose() => folder.Dispose();

    private async Task<KvTaskSpec?> StoredAsync(string ns, string name)
    {
        var pair = (await consul.Client.Kv.GetAsync(cli.Layout.TaskKey(ns, name), cancellationToken: Ct)).Value;
        return pair is null ? null : KvTaskSpec.Parse(pair.ValueAsString());
    }

    [Fact]
    public async Task Apply_prints_created_then_unchanged_then_configured_like_kubectl()
    {
        folder.Write("backup.yaml", TaskManifests.Yaml("ops", "backup"));
        folder.Write("more/report.yaml", TaskManifests.Yaml("ops", "report"));

        var first = cli.Run("apply", "-f", folder.Path);
        var second = cli.Run("apply", "-f", folder.Path);
        folder.Write("backup.yaml", TaskManifests.Yaml("ops", "backup", every: "5m"));
        var third = cli.Run("apply", "-f", folder.Path);

        Assert.Equal((0, "scheduledtask.dtask.dev/ops/backup created\nscheduledtask.dtask.dev/ops/report created\n", ""), (first.ExitCode, first.Output, first.Error));
        Assert.Equal((0, "scheduledtask.dtask.dev/ops/backup unchanged\nscheduledtask.dtask.dev/ops/report unchanged\n"), (second.ExitCode, second.Output));
        Assert.Equal((0, "scheduledtask.dtask.dev/ops/backup configured\nscheduledtask.dtask.dev/ops/report unchanged\n"), (third.ExitCode, third.Output));
        var stored = (await StoredAsync("ops", "backup"))!;
        Assert.Equal((TaskOwner.Cli, 2L, "5m"), (stored.Owner, stored.Generation, stored.Spec.Every));
    }

    [Fact]
    public async Task Any_invalid_document_prints_its_errors_and_nothing_is_written()
    {
        folder.Write("good.yaml", TaskManifests.Yaml("ops", "good"));
        folder.Write("bad.yaml", TaskManifests.Yaml("ops", "bad", every: "soon"));

        var run = cli.Run("apply", "-f", folder.Path);

        Assert.Equal(1, run.ExitCode);
        Assert.Equal("", run.Output);
        Assert.Contains("bad.yaml[0] ops/bad: spec.every:", run.Error, StringComparison.Ordinal);
        Assert.Contains("dtask apply: 1 invalid document; nothing was written", run.Error, StringComparison.Ordinal);
        Assert.Null(await StoredAsync("ops", "good"));
    }

    [Fact]
    public async Task A_task_owned_by_a_directory_is_reported_and_left_alone()
    {
        await new TaskReconciler(consul.Client, cli.Layout).ReconcileAsync(TaskOwner.Directory("/srv/tasks"),
            ManifestReader.ReadText(TaskManifests.Yaml("ops", "backup", every: "2m"), "x.yaml"), cancellationToken: Ct);
        folder.Write("backup.yaml", TaskManifests.Yaml("ops", "backup"));
        folder.Write("other.yaml", TaskManifests.Yaml("ops", "other"));

        var run = cli.Run("apply", "-f", folder.Path);

        Assert.Equal(1, run.ExitCode);
        Assert.Equal("scheduledtask.dtask.dev/ops/other created\n", run.Output);
        Assert.Equal("scheduledtask.dtask.dev/ops/backup is owned by dir:/srv/tasks; not changed\n", run.Error);
        Assert.Equal("2m", (await StoredAsync("ops", "backup"))!.Spec.Every);
    }

    [Fact]
    public async Task Apply_keeps_tasks_missing_from_the_files_unless_pruning()
    {
        folder.Write("a.yaml", TaskManifests.Yaml("ops", "a"));
        var b = folder.Write("b.yaml", TaskManifests.Yaml("ops", "b"));
        cli.Run("apply", "-f", folder.Path);
        File.Delete(b);

        var plain = cli.Run("apply", "-f", folder.Path);
        Assert.NotNull(await StoredAsync("ops", "b"));
        var pruned = cli.Run("apply", "-f", folder.Path, "--prune");

        Assert.Equal("scheduledtask.dtask.dev/ops/a unchanged\n", plain.Output);
        Assert.Equal("scheduledtask.dtask.dev/ops/a unchanged\nscheduledtask.dtask.dev/ops/b deleted\n", pruned.Output);
        Assert.Null(await StoredAsync("ops", "b"));
    }

    [Fact]
    public async Task Delete_by_name_or_file_refuses_another_sources_task_unless_forced()
    {
        var file = folder.Write("mine.yaml", TaskManifests.Yaml("ops", "mine"));
        cli.Run("apply", "-f", file);
        await new TaskReconciler(consul.Client, cli.Layout).ApplyOneAsync(TaskOwner.Kubernetes,
            ManifestReader.ReadText(TaskManifests.Yaml("ops", "theirs"), "x.yaml")[0].Task! with { }, Ct);

        var mine = cli.Run("delete", "-f", file);
        var refused = cli.Run("delete", "ops/theirs");
        var missing = cli.Run("delete", "ops/nothing");
        var forced = cli.Run("delete", "ops/theirs", "--force");

        Assert.Equal((0, "scheduledtask.dtask.dev/ops/mine deleted\n"), (mine.ExitCode, mine.Output));
        Assert.Equal(1, refused.ExitCode);
        Assert.Equal("scheduledtask.dtask.dev/ops/theirs is owned by kubernetes; not changed; use --force to delete it anyway (its source would write it again)\n", refused.Error);
        Assert.Equal((1, "scheduledtask.dtask.dev/ops/nothing not found\n"), (missing.ExitCode, missing.Error));
        Assert.Equal((0, "scheduledtask.dtask.dev/ops/theirs deleted\n"), (forced.ExitCode, forced.Output));
        Assert.Null(await StoredAsync("ops", "theirs"));
    }

    [Fact]
    public void Usage_errors_exit_2_and_an_unreachable_Consul_exits_69_with_one_line()
    {
        folder.Write("a.yaml", TaskManifests.Yaml("ops", "a"));

        var missing = cli.Run("apply", "-f", Path.Combine(folder.Path, "nope.yaml"));
        var both = cli.Run("delete", "ops/a", "-f", folder.Path);
        var badName = cli.Run("describe", "ops/Not_A_Name");
        var unreachable = CliRun.Of("apply", "-f", folder.Path, "--consul", "127.0.0.1:1");
        var kubernetes = CliRun.Of("operator", "--source", "kubernetes", "--namespace", "Not_A_Namespace");
        var misplaced = CliRun.Of("operator", "--source", "kubernetes", "--lease-key", "x");

        Assert.Equal(2, missing.ExitCode);
        Assert.Equal(2, both.ExitCode);
        Assert.Equal(2, badName.ExitCode);
        Assert.Equal(69, unreachable.ExitCode);
        Assert.StartsWith("dtask apply: Consul is unreachable:", unreachable.Error, StringComparison.Ordinal);
        Assert.Single(unreachable.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal(2, kubernetes.ExitCode);
        Assert.StartsWith("dtask operator: --namespace: 'Not_A_Namespace' ", kubernetes.Error, StringComparison.Ordinal);
        Assert.Equal((2, "dtask operator: --lease-key applies to --source dir:PATH only\n"), (misplaced.ExitCode, misplaced.Error));
    }
}
