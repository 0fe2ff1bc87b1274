using System.Text.Json.Nodes;
using Dtask.Core.Manifests;
using Dtask.Core.State;
using Dtask.Core.Validation;
using Dtask.Operator.Sources.Kubernetes;
using Dtask.Operator.Tests.Support;
using Dtask.Testing.Kubernetes;

namespace Dtask.Operator.Tests.Kubernetes;

/// <summary>The Kubernetes source against the loopback API server and the real Consul agent.</summary>
public sealed class KubernetesOperatorTests(ConsulFixture consul) : IAsyncLifetime
{
    private const string Ns = KubernetesScenario.Ns;
    private readonly KubernetesScenario scenario = new(consul);
    private KubernetesApiServer Server => scenario.Server;
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public ValueTask DisposeAsync() => scenario.DisposeAsync();

    private static string StatusPath(string name) => $"/apis/dtask.dev/v1alpha1/namespaces/{Ns}/scheduledtasks/{name}/status";

    [Fact]
    public async Task The_initial_list_writes_existing_objects_to_Consul_adds_finalizers_and_patches_their_status()
    {
        scenario.Create("backup");
        scenario.Create("report", KubernetesScenario.Spec("5m"));
        scenario.Create("elsewhere", ns: "other");

        await using var replica = await scenario.StartAsync();

        var backup = await scenario.EventuallyStoredAsync("backup", s => s is not null, "backup in Consul");
        var report = await scenario.EventuallyStoredAsync("report", s => s is not null, "report in Consul");
        Assert.Equal((TaskOwner.Kubernetes, 1L, "1h"), (backup!.Owner, backup.Generation, backup.Spec.Every));
        Assert.Equal("5m", report!.Spec.Every);
        var item = await scenario.EventuallyObjectAsync("backup", o => KubernetesScenario.Condition(o, "Synced")?["status"]?.GetValue<string>() == "True", "backup's status");
        Assert.Equal(ScheduledTaskObject.CleanupFinalizer, item!["metadata"]!["finalizers"]![0]!.GetValue<string>());
        Assert.Equal(1, item["status"]!["observedGeneration"]!.GetValue<long>());
        Assert.Equal("True", KubernetesScenario.Condition(item, "Ready")!["status"]!.GetValue<string>());
        Assert.NotNull(item["status"]!["nextScheduleTime"]);

        // Only the watched namespace.
        Assert.Null(await scenario.StoredAsync("elsewhere", "other"));
        Assert.Null(scenario.Get("elsewhere", "other")!["metadata"]!["finalizers"]);

        // The two objects are reconciled one after the other: report's status may be patched a moment after backup's.
        await scenario.EventuallyObjectAsync("report", o => KubernetesScenario.Condition(o, "Synced")?["status"]?.GetValue<string>() == "True", "report's status");
        var write = Server.Requests.First(r => r.IsStatusWrite && r.Path == StatusPath("report"));
        Assert.Equal("PATCH", write.Method);
        Assert.StartsWith("application/merge-patch+json", write.ContentType, StringComparison.Ordinal);
        var body = JsonNode.Parse(write.Body)!["status"]!;
        Assert.Equal(1, body["observedGeneration"]!.GetValue<long>());
        Assert.Equal(["Ready", "Synced"], body["conditions"]!.AsArray().Select(c => c!["type"]!.GetValue<string>()));
        Assert.Contains(Server.Requests, r => r.Method == "GET" && r.Path == "/apis/dtask.dev/v1alpha1/namespaces/jobs/scheduledtasks" && !r.IsWatch);
        var watch = Assert.Single(Server.Requests, r => r.IsWatch);
        Assert.Equal("true", watch.QueryParameters["allowWatchBookmarks"]);
    }

    [Fact]
    public async Task Added_modified_and_deleted_objects_reach_Consul_and_a_deleted_spec_leaves_Consul_before_the_object_goes()
    {
        await using var replica = await scenario.StartAsync();
        await Eventually.TrueAsync(() => replica.Operator.Lists >= 1, "the first list");

        scenario.Create("backup");
        await scenario.EventuallyStoredAsync("backup", s => s?.Generation == 1, "the added object");
        await scenario.EventuallyObjectAsync("backup", o => o?["metadata"]?["finalizers"] is JsonArray { Count: 1 }, "the finalizer");

        Server.MergePatch(KubernetesScenario.Tasks, Ns, "backup", new JsonObject { ["spec"] = new JsonObject { ["every"] = "5m" } });
        var modified = await scenario.EventuallyStoredAsync("backup", s => s?.Spec.Every == "5m", "the modified object");
        Assert.Equal(2, modified!.Generation);
        await scenario.EventuallyObjectAsync("backup", o => o?["status"]?["observedGeneration"]?.GetValue<long>() == 2, "observedGeneration 2");

        // While the object exists, its spec may be in Consul; once it is gone, the spec must already be gone.
        using var stopSampling = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var violations = 0;
        var sampling = Task.Run(async () =>
        {
            while (!stopSampling.IsCancellationRequested)
            {
                var objectGone = scenario.Get("backup") is null;
                var specThere = await scenario.StoredAsync("backup") is not null;
                if (objectGone && specThere)
                {
                    violations++;
                }

                if (objectGone)
                {
                    return;
                }
            }
        }, Ct);
        Server.ClearRequests();

        Assert.False(Server.Delete(KubernetesScenario.Tasks, Ns, "backup"));
        await sampling.WaitAsync(TimeSpan.FromSeconds(10), Ct);
        await stopSampling.CancelAsync();

        Assert.Equal(0, violations);
        Assert.Null(await scenario.StoredAsync("backup"));
        var removal = Assert.Single(Server.Requests, r => r.Method == "PATCH" && r.Path.EndsWith("/scheduledtasks/backup", StringComparison.Ordinal));
        Assert.StartsWith("application/json-patch+json", removal.ContentType, StringComparison.Ordinal);
        Assert.Contains("\"op\":\"remove\",\"path\":\"/metadata/finalizers/0\"", removal.Body, StringComparison.Ordinal);
        Assert.Contains("\"op\":\"test\",\"path\":\"/metadata/resourceVersion\"", removal.Body, StringComparison.Ordinal);
        Assert.DoesNotContain(Server.Requests, r => r.IsStatusWrite);
    }

    [Fact]
    public async Task Bookmarks_and_the_operators_own_status_writes_cause_no_reconcile_and_no_write()
    {
        scenario.Create("backup");
        scenario.Create("report");
        await using var replica = await scenario.StartAsync();
        await scenario.EventuallyObjectAsync("report", o => o?["status"] is not null, "a status");
        await KubernetesScenario.SettledAsync(replica);
        var reconciles = replica.Operator.Reconciles;
        var consulWrites = replica.Consul.Requests.Snapshot();
        Server.ClearRequests();

        for (var i = 0; i < 5; i++)
        {
            Server.SendBookmark();
        }

        // A status write by someone else changes no generation either: like the operator's own, it is skipped.
        Server.MergePatch(KubernetesScenario.Tasks, Ns, "backup", new JsonObject { ["status"] = new JsonObject { ["observedGeneration"] = 1 } }, status: true);

        // A new object after them on the same watch stream: once it is reconciled and the operator settled, every event
        // before it was handled.
        scenario.Create("sentinel");
        await scenario.EventuallyStoredAsync("sentinel", s => s is not null, "the reconcile of an object created after the events");
        await scenario.EventuallyObjectAsync("sentinel", o => o?["status"] is not null, "the sentinel's status");
        await KubernetesScenario.SettledAsync(replica);

        Assert.Equal(reconciles + (reconciles / 2), replica.Operator.Reconciles); // the sentinel cost what each of the first two did
        Assert.DoesNotContain(Server.Requests, r => r.Method is "PATCH" or "PUT" or "GET" && r.Path.Contains("/scheduledtasks", StringComparison.Ordinal)
            && !r.Path.Contains("/scheduledtasks/sentinel", StringComparison.Ordinal));
        Assert.Equal(1, replica.Consul.Requests.Snapshot().Since(consulWrites).Writes);
    }

    public static TheoryData<string, ExpiredWatchAnswer> ExpiredAnswers => new()
    {
        { "an ERROR event in the stream", ExpiredWatchAnswer.ErrorEvent },
        { "an HTTP 410 answer", ExpiredWatchAnswer.HttpGone },
    };

    [Theory]
    [MemberData(nameof(ExpiredAnswers))]
    public async Task An_expired_watch_lists_again_and_picks_up_what_changed_in_the_gap(string row, ExpiredWatchAnswer answer)
    {
        scenario.Create("backup");
        var options = KubernetesScenario.Options("operator-a") with { InitialBackoff = TimeSpan.FromMilliseconds(500) };
        await using var replica = await scenario.StartAsync(options: options);
        await scenario.EventuallyStoredAsync("backup", s => s is not null, "the first list");
        await KubernetesScenario.SettledAsync(replica);
        Server.ExpiredWatchAnswer = answer;

        // The watch drops; while the operator backs off, objects change and the history is compacted, so its
        // watch from the last version it saw expires.
        Server.DropWatchConnections();
        scenario.Create("report");
        Server.MergePatch(KubernetesScenario.Tasks, Ns, "backup", new JsonObject { ["spec"] = new JsonObject { ["every"] = "7m" } });
        Server.Compact();

        await scenario.EventuallyStoredAsync("report", s => s is not null, $"the object created in the gap ({row})");
        await scenario.EventuallyStoredAsync("backup", s => s?.Spec.Every == "7m", $"the change made in the gap ({row})");
        Assert.True(replica.Operator.Lists >= 2, row);

        // And it carries on watching.
        scenario.Create("later");
        await scenario.EventuallyStoredAsync("later", s => s is not null, $"an object created after the relist ({row})");
    }

    [Fact]
    public async Task A_dropped_watch_connection_is_watched_again_from_the_last_version_without_a_list()
    {
        await using var replica = await scenario.StartAsync();
        scenario.Create("backup");
        await scenario.EventuallyStoredAsync("backup", s => s is not null, "the added object");
        await KubernetesScenario.SettledAsync(replica);
        var versionSeen = scenario.Get("backup")!["metadata"]!["resourceVersion"]!.GetValue<string>();
        Server.ClearRequests();

        Server.DropWatchConnections();
        await Server.WaitForWatchesAsync(1, Ct);
        scenario.Create("report");

        await scenario.EventuallyStoredAsync("report", s => s is not null, "an object created after the drop");
        Assert.Equal(1, replica.Operator.Lists);
        var rewatch = Server.Requests.First(r => r.IsWatch);
        Assert.True(long.Parse(rewatch.QueryParameters["resourceVersion"]!, System.Globalization.CultureInfo.InvariantCulture)
                    >= long.Parse(versionSeen, System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task A_run_record_in_Consul_shows_in_the_status_as_the_last_run()
    {
        scenario.Create("backup");
        await using var replica = await scenario.StartAsync();
        await scenario.EventuallyObjectAsync("backup", o => o?["status"] is not null, "a first status");
        Server.ClearRequests();

        var slot = 1_773_144_000L;
        var run = new RunRecord
        {
            Slot = slot, RunId = "r1", Node = "node-a", State = RunState.Succeeded, ExitCode = 0,
            StartedAt = DateTimeOffset.FromUnixTimeSeconds(slot + 1), FinishedAt = DateTimeOffset.FromUnixTimeSeconds(slot + 3),
        };
        await consul.Client.Kv.PutStringAsync(scenario.Layout.RunKey(Ns, "backup"), StateJson.Serialize(run), cancellationToken: Ct);

        var item = await scenario.EventuallyObjectAsync("backup", o => o?["status"]?["lastRun"] is not null, "the last run in the status");
        var lastRun = item!["status"]!["lastRun"]!;
        Assert.Equal(("node-a", "succeeded", 0), (lastRun["node"]!.GetValue<string>(), lastRun["result"]!.GetValue<string>(), lastRun["exitCode"]!.GetValue<int>()));
        Assert.Equal("2026-03-10T12:00:00Z", item["status"]!["lastScheduleTime"]!.GetValue<string>());
        Assert.Equal("2026-03-10T12:00:03Z", item["status"]!["lastSuccessfulTime"]!.GetValue<string>());
        var write = Server.Requests.Last(r => r.IsStatusWrite && r.Body.Contains("lastRun", StringComparison.Ordinal));
        Assert.Equal(StatusPath("backup"), write.Path);
        var patch = JsonNode.Parse(write.Body)!["status"]!.AsObject();
        Assert.True(patch.ContainsKey("lastRun"));
        Assert.False(patch.ContainsKey("conditions"), "only what changed is patched");
    }

    [Fact]
    public async Task An_invalid_object_gets_Ready_False_with_the_validators_message_and_Consul_keeps_the_last_valid_spec()
    {
        var invalidSpec = new JsonObject { ["command"] = new JsonArray("true") };
        var manifest = scenario.Create("broken", invalidSpec);
        manifest.Remove("status");
        var expected = string.Join("; ", TaskValidator.Check(manifest).Errors);
        Assert.NotEmpty(expected);
        scenario.Create("backup");
        await using var replica = await scenario.StartAsync();

        var broken = await scenario.EventuallyObjectAsync("broken", o => KubernetesScenario.Condition(o, "Ready") is not null, "the invalid object's status");
        var ready = KubernetesScenario.Condition(broken, "Ready")!;
        Assert.Equal(("False", "Invalid", expected), (ready["status"]!.GetValue<string>(), ready["reason"]!.GetValue<string>(), ready["message"]!.GetValue<string>()));
        Assert.Null(await scenario.StoredAsync("broken"));

        // Valid, then made invalid: Consul keeps generation 1.
        await scenario.EventuallyStoredAsync("backup", s => s?.Generation == 1, "the valid object");
        Server.MergePatch(KubernetesScenario.Tasks, Ns, "backup", new JsonObject { ["spec"] = new JsonObject { ["every"] = null, ["timeout"] = "soon" } });
        var edited = await scenario.EventuallyObjectAsync("backup", o => o?["status"]?["observedGeneration"]?.GetValue<long>() == 2, "the invalid edit's status");
        Assert.Equal("False", KubernetesScenario.Condition(edited, "Ready")!["status"]!.GetValue<string>());
        Assert.Contains("spec.timeout", KubernetesScenario.Condition(edited, "Ready")!["message"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal("the spec is invalid and was not written; Consul keeps generation 1", KubernetesScenario.Condition(edited, "Synced")!["message"]!.GetValue<string>());
        var kept = await scenario.StoredAsync("backup");
        Assert.Equal((1L, "1h"), (kept!.Generation, kept.Spec.Every));
    }

    [Fact]
    public async Task Two_replicas_elect_one_leader_the_other_writes_nothing_and_takes_over_when_the_leader_stops()
    {
        scenario.Create("backup");
        await using var first = await scenario.StartAsync("operator-a");
        await using var second = await scenario.StartAsync("operator-b");

        await Eventually.TrueAsync(() => first.Operator.IsLeader || second.Operator.IsLeader, "a leader");
        var (leader, follower) = first.Operator.IsLeader ? (first, second) : (second, first);
        await scenario.EventuallyStoredAsync("backup", s => s is not null, "the leader's reconcile");
        await KubernetesScenario.SettledAsync(leader);
        // The follower is up and campaigning, and the leader has renewed its lease three times since: the follower had
        // as many retry periods to write something.
        await Eventually.TrueAsync(() => follower.Operator.Readiness.IsReady, "the waiting replica to be ready");
        await scenario.LeaseRenewedAsync(3);

        Assert.False(follower.Operator.IsLeader);
        Assert.Equal((0L, 0L, 0L), (follower.Operator.Terms, follower.Operator.Lists, follower.Operator.Reconciles));
        Assert.Equal(0, follower.Consul.Requests.Writes);
        Assert.True(follower.Operator.Readiness.IsReady, "a waiting replica is ready");

        await leader.StopAsync();
        await Eventually.TrueAsync(() => follower.Operator.IsLeader, "the follower to take over");
        scenario.Create("report");
        await scenario.EventuallyStoredAsync("report", s => s is not null, "the new leader's reconcile");
        Assert.Equal(1, follower.Operator.Terms);
    }
}
