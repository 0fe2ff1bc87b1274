using Dtask.Consul;
using Dtask.Consul.Kv;
using Dtask.Core.Manifests;
using Dtask.Core.State;
using Dtask.Operator.Reconciliation;
using Dtask.Operator.Tests.Support;

namespace Dtask.Operator.Tests;

public sealed class ReconcilerTests(ConsulFixture consul) : IDisposable
{
    private static readonly TaskOwner Dir = TaskOwner.Directory("/srv/tasks");
    private static readonly TaskOwner OtherDir = TaskOwner.Directory("/srv/other");
    private readonly KvLayout layout = ConsulFixture.NewLayout();
    private readonly ConsulClient client = consul.NewClient();
    private static readonly IReadOnlyList<ManifestDocument> Nothing = [];
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private TaskReconciler Reconciler => new(client, layout);

    public void Dispose() => client.Dispose();

    private async Task<KvTaskSpec?> StoredAsync(string ns, string name)
    {
        var pair = (await client.Kv.GetAsync(layout.TaskKey(ns, name), cancellationToken: Ct)).Value;
        return pair is null ? null : KvTaskSpec.Parse(pair.ValueAsString());
    }

    private static IEnumerable<string> Lines(ReconcileResult result) => result.Outcomes.Select(o => o.ToString());

    [Fact]
    public async Task New_tasks_are_created_at_generation_1_with_their_owner_and_spec_hash()
    {
        var result = await Reconciler.ReconcileAsync(Dir, [Manifest.Document("ops", "backup"), Manifest.Document("ops", "report", "5m")], cancellationToken: Ct);

        Assert.Equal(["ops/backup created", "ops/report created"], Lines(result));
        Assert.Equal(1, result.Writes);
        var stored = Assert.IsType<KvTaskSpec>(await StoredAsync("ops", "report"));
        Assert.Equal(1, stored.Generation);
        Assert.Equal(Dir, stored.Owner);
        Assert.Equal("5m", stored.Spec.Every);
        Assert.Equal(TaskJson.SpecHash(stored.Spec), stored.SpecHash);
    }

    public static TheoryData<string, string, string, long> Rows => new()
    {
        // name, second "every", expected line, expected generation
        { "same spec again, unchanged", "1m", "ops/backup unchanged", 1 },
        { "spec edited, configured and generation bumped", "2m", "ops/backup configured", 2 },
    };

    [Theory]
    [MemberData(nameof(Rows))]
    public async Task A_second_reconcile(string row, string every, string expected, long generation)
    {
        _ = row;
        await Reconciler.ReconcileAsync(Dir, [Manifest.Document("ops", "backup")], cancellationToken: Ct);

        var result = await Reconciler.ReconcileAsync(Dir, [Manifest.Document("ops", "backup", every)], cancellationToken: Ct);

        Assert.Equal([expected], Lines(result));
        Assert.Equal(generation, (await StoredAsync("ops", "backup"))!.Generation);
        Assert.Equal(every, (await StoredAsync("ops", "backup"))!.Spec.Every);
    }

    [Fact]
    public async Task A_manifest_that_resumes_the_task_stamps_the_resume_time_and_later_edits_keep_it()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero));
        var reconciler = new TaskReconciler(client, layout, time: time);
        var suspended = Assert.Single(ManifestReader.ReadText(Manifest.Yaml("ops", "backup", extra: "\n  suspend: true"), "b.yaml"));
        await reconciler.ReconcileAsync(Dir, [Manifest.Document("ops", "backup")], cancellationToken: Ct);
        await reconciler.ReconcileAsync(Dir, [suspended], cancellationToken: Ct);
        var whileSuspended = await StoredAsync("ops", "backup");

        time.Advance(TimeSpan.FromMinutes(10));
        var resume = await reconciler.ReconcileAsync(Dir, [Manifest.Document("ops", "backup")], cancellationToken: Ct);
        var resumed = await StoredAsync("ops", "backup");
        time.Advance(TimeSpan.FromMinutes(10));
        var steady = await reconciler.ReconcileAsync(Dir, [Manifest.Document("ops", "backup")], cancellationToken: Ct);
        await reconciler.ReconcileAsync(Dir, [Manifest.Document("ops", "backup", "2m")], cancellationToken: Ct);
        var edited = await StoredAsync("ops", "backup");

        Assert.Equal((true, (DateTimeOffset?)null), (whileSuspended!.Spec.IsSuspended, whileSuspended.ResumedAt));
        Assert.Equal(["ops/backup configured"], Lines(resume));
        Assert.Equal((false, (DateTimeOffset?)time.Start.AddMinutes(10)), (resumed!.Spec.IsSuspended, resumed.ResumedAt));
        Assert.Equal(0, steady.Writes);
        Assert.Equal(("2m", (DateTimeOffset?)time.Start.AddMinutes(10)), (edited!.Spec.Every, edited.ResumedAt));
    }

    [Fact]
    public async Task The_steady_state_reads_once_and_writes_nothing()
    {
        var documents = Enumerable.Range(0, 10).Select(i => Manifest.Document("ops", $"task-{i}")).ToList();
        await Reconciler.ReconcileAsync(Dir, documents, cancellationToken: Ct);

        var before = client.Requests.Snapshot();
        var result = await Reconciler.ReconcileAsync(Dir, documents, cancellationToken: Ct);
        var spent = client.Requests.Snapshot().Since(before);

        Assert.Equal(10, result.Count(TaskAction.Unchanged));
        Assert.Equal(0, result.Writes);
        Assert.Equal(0, spent.Writes);
        Assert.Equal(1, spent.Requests);
    }

    [Fact]
    public async Task A_task_no_longer_declared_is_deleted_with_delete_cas()
    {
        await Reconciler.ReconcileAsync(Dir, [Manifest.Document("ops", "backup"), Manifest.Document("ops", "report")], cancellationToken: Ct);

        var result = await Reconciler.ReconcileAsync(Dir, [Manifest.Document("ops", "report")], cancellationToken: Ct);

        Assert.Equal(["ops/backup deleted", "ops/report unchanged"], Lines(result));
        Assert.Null(await StoredAsync("ops", "backup"));
    }

    [Fact]
    public async Task Without_prune_an_undeclared_task_stays()
    {
        await Reconciler.ReconcileAsync(TaskOwner.Cli, [Manifest.Document("ops", "backup")], prune: false, Ct);

        var result = await Reconciler.ReconcileAsync(TaskOwner.Cli, [Manifest.Document("ops", "report")], prune: false, Ct);

        Assert.Equal(["ops/report created"], Lines(result));
        Assert.NotNull(await StoredAsync("ops", "backup"));
    }

    [Fact]
    public async Task An_invalid_document_is_not_written_keeps_the_previous_spec_and_is_not_pruned()
    {
        await Reconciler.ReconcileAsync(Dir, [Manifest.Document("ops", "backup", "2m")], cancellationToken: Ct);

        var result = await Reconciler.ReconcileAsync(Dir, [Manifest.InvalidDocument("ops", "backup"), Manifest.InvalidDocument("ops", "fresh")], cancellationToken: Ct);

        var backup = Assert.Single(result.Outcomes, o => o.Name == "backup");
        Assert.Equal(TaskAction.Invalid, backup.Action);
        Assert.True(backup.PreviousSpecKept);
        Assert.Contains(backup.Errors, e => e.Path.StartsWith("spec", StringComparison.Ordinal));
        Assert.False(Assert.Single(result.Outcomes, o => o.Name == "fresh").PreviousSpecKept);
        Assert.Equal(0, result.Writes);
        var stored = Assert.IsType<KvTaskSpec>(await StoredAsync("ops", "backup"));
        Assert.Equal("2m", stored.Spec.Every);
        Assert.Null(await StoredAsync("ops", "fresh"));
    }

    [Fact]
    public async Task While_a_document_is_unreadable_nothing_is_pruned()
    {
        await Reconciler.ReconcileAsync(Dir, [Manifest.Document("ops", "backup")], cancellationToken: Ct);
        var broken = Assert.Single(ManifestReader.ReadText("metadata: [unclosed", "backup.yaml"));

        var result = await Reconciler.ReconcileAsync(Dir, [broken], cancellationToken: Ct);

        var outcome = Assert.Single(result.Outcomes);
        Assert.Equal(TaskAction.Invalid, outcome.Action);
        Assert.Contains("no task is deleted", outcome.ToString(), StringComparison.Ordinal);
        Assert.NotNull(await StoredAsync("ops", "backup"));
    }

    [Fact]
    public async Task A_task_owned_by_another_source_is_a_conflict_and_left_alone()
    {
        await Reconciler.ReconcileAsync(OtherDir, [Manifest.Document("ops", "backup", "2m")], cancellationToken: Ct);

        var result = await Reconciler.ReconcileAsync(Dir, [Manifest.Document("ops", "backup", "5m")], cancellationToken: Ct);

        Assert.Equal(["ops/backup is owned by dir:/srv/other; not changed"], Lines(result));
        Assert.Equal(0, result.Writes);
        var stored = (await StoredAsync("ops", "backup"))!;
        Assert.Equal(OtherDir, stored.Owner);
        Assert.Equal("2m", stored.Spec.Every);
    }

    [Fact]
    public async Task A_cli_task_survives_a_directory_reconcile_and_a_directory_task_survives_a_pruning_apply()
    {
        await Reconciler.ReconcileAsync(TaskOwner.Cli, [Manifest.Document("ops", "by-cli")], prune: false, Ct);
        await Reconciler.ReconcileAsync(Dir, [Manifest.Document("ops", "by-dir")], cancellationToken: Ct);

        var dirAgain = await Reconciler.ReconcileAsync(Dir, Nothing, cancellationToken: Ct);
        var cliPrune = await Reconciler.ReconcileAsync(TaskOwner.Cli, Nothing, prune: true, Ct);

        Assert.Equal(["ops/by-dir deleted"], Lines(dirAgain));
        Assert.Equal(["ops/by-cli deleted"], Lines(cliPrune));

        await Reconciler.ReconcileAsync(TaskOwner.Cli, [Manifest.Document("ops", "by-cli")], prune: false, Ct);
        await Reconciler.ReconcileAsync(Dir, [Manifest.Document("ops", "by-dir")], cancellationToken: Ct);
        Assert.Empty((await Reconciler.ReconcileAsync(Dir, [Manifest.Document("ops", "by-dir")], cancellationToken: Ct)).With(TaskAction.Deleted));
        Assert.Equal(TaskOwner.Cli, (await StoredAsync("ops", "by-cli"))!.Owner);
        Assert.DoesNotContain((await Reconciler.ReconcileAsync(TaskOwner.Cli, Nothing, prune: true, Ct)).Outcomes, o => o.Name == "by-dir");
        Assert.Equal(Dir, (await StoredAsync("ops", "by-dir"))!.Owner);
    }

    [Fact]
    public async Task More_than_64_changes_go_in_batches_of_at_most_64()
    {
        var documents = Enumerable.Range(0, 150).Select(i => Manifest.Document("bulk", $"task-{i:000}")).ToList();

        var result = await Reconciler.ReconcileAsync(Dir, documents, cancellationToken: Ct);

        Assert.Equal(150, result.Count(TaskAction.Created));
        Assert.Equal(3, result.Writes);
        Assert.Equal(150, (await client.Kv.KeysAsync(layout.TasksPrefix, cancellationToken: Ct)).Value.Count);
    }

    [Fact]
    public async Task Kubernetes_generation_comes_from_metadata_and_typed_tasks_are_validated()
    {
        var created = await Reconciler.ApplyOneAsync(TaskOwner.Kubernetes, Manifest.Task("ops", "backup", generation: 7), Ct);
        var same = await Reconciler.ApplyOneAsync(TaskOwner.Kubernetes, Manifest.Task("ops", "backup", generation: 7), Ct);
        var edited = await Reconciler.ApplyOneAsync(TaskOwner.Kubernetes, Manifest.Task("ops", "backup", "3m", generation: 9), Ct);
        var invalid = await Reconciler.ApplyOneAsync(TaskOwner.Kubernetes, Manifest.Task("ops", "backup", "not-a-duration", generation: 10), Ct);

        Assert.Equal((TaskAction.Created, 7L), (created.Action, created.Generation!.Value));
        Assert.Equal(TaskAction.Unchanged, same.Action);
        Assert.Equal((TaskAction.Configured, 9L), (edited.Action, edited.Generation!.Value));
        Assert.Equal(TaskAction.Invalid, invalid.Action);
        Assert.True(invalid.PreviousSpecKept);
        Assert.Equal(9, (await StoredAsync("ops", "backup"))!.Generation);
    }

    [Fact]
    public async Task Delete_one_refuses_another_owners_task_unless_forced()
    {
        await Reconciler.ApplyOneAsync(TaskOwner.Kubernetes, Manifest.Task("ops", "backup", generation: 1), Ct);

        var refused = await Reconciler.DeleteOneAsync(TaskOwner.Cli, "ops", "backup", cancellationToken: Ct);
        var missing = await Reconciler.DeleteOneAsync(TaskOwner.Cli, "ops", "nothing", cancellationToken: Ct);
        var forced = await Reconciler.DeleteOneAsync(TaskOwner.Cli, "ops", "backup", force: true, Ct);

        Assert.Equal("ops/backup is owned by kubernetes; not changed", refused.ToString());
        Assert.Equal(TaskAction.NotFound, missing.Action);
        Assert.Equal(TaskAction.Deleted, forced.Action);
        Assert.Null(await StoredAsync("ops", "backup"));
    }

    [Fact]
    public async Task A_concurrent_writer_makes_the_reconciler_read_again_instead_of_overwriting()
    {
        await Reconciler.ReconcileAsync(Dir, [Manifest.Document("ops", "backup")], cancellationToken: Ct);
        var key = layout.TaskKey("ops", "backup");
        var stolen = (await StoredAsync("ops", "backup"))! with { Owner = OtherDir, Generation = 5 };
        using var interfering = new ConsulClient(consul.Agent.ClientOptions(), new BeforeFirstTransaction(async () =>
            await consul.Client.Kv.PutStringAsync(key, stolen.ToJson(), cancellationToken: Ct)));

        var result = await new TaskReconciler(interfering, layout).ReconcileAsync(Dir, [Manifest.Document("ops", "backup", "9m")], cancellationToken: Ct);

        Assert.Equal(2, result.Attempts);
        Assert.Equal(["ops/backup is owned by dir:/srv/other; not changed"], Lines(result));
        var stored = (await StoredAsync("ops", "backup"))!;
        Assert.Equal((OtherDir, 5L, "1m"), (stored.Owner, stored.Generation, stored.Spec.Every));
    }

    /// <summary>Runs an action (another writer) just before the first transaction reaches Consul.</summary>
    private sealed class BeforeFirstTransaction(Func<Task> action) : DelegatingHandler(new SocketsHttpHandler())
    {
        private int done;

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            if (request.RequestUri!.AbsolutePath == "/v1/txn" && Interlocked.Exchange(ref done, 1) == 0)
            {
                await action();
            }

            return await base.SendAsync(request, cancellationToken);
        }
    }
}
