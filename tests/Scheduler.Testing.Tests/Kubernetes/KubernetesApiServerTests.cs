using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Dtask.Testing.Kubernetes;
using k8s;
using k8s.Autorest;
using k8s.LeaderElection;
using k8s.LeaderElection.ResourceLock;
using k8s.Models;

namespace Dtask.Testing.Tests.Kubernetes;

/// <summary>The loopback API server against the real KubernetesClient: the calls the operator makes, and what it sees.</summary>
public sealed class KubernetesApiServerTests : IAsyncLifetime
{
    private const string Group = "dtask.dev";
    private const string Version = "v1alpha1";
    private const string Plural = "scheduledtasks";
    private const string Ns = "jobs";
    private static readonly KubernetesResourceType Tasks = KubernetesResourceType.ScheduledTasks;
    private KubernetesApiServer server = null!;
    private k8s.Kubernetes client = null!;

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    public ValueTask InitializeAsync()
    {
        server = KubernetesApiServer.Start();
        client = server.CreateClient();
        return ValueTask.CompletedTask;
    }

    public async ValueTask DisposeAsync()
    {
        client.Dispose();
        await server.DisposeAsync();
    }

    private static JsonObject Spec(string every = "1m") => new() { ["every"] = every, ["command"] = new JsonArray("true") };

    private JsonObject Seed(string name, params string[] finalizers) => server.Create(Tasks.Manifest(Ns, name, Spec(), finalizers));

    private async Task<string> ListVersionAsync(string? ns = Ns)
    {
        var list = ns is null
            ? await client.CustomObjects.ListClusterCustomObjectAsync<JsonElement>(Group, Version, Plural, cancellationToken: Cancel)
            : await client.CustomObjects.ListNamespacedCustomObjectAsync<JsonElement>(Group, Version, ns, Plural, cancellationToken: Cancel);
        return list.GetProperty("metadata").GetProperty("resourceVersion").GetString()!;
    }

    private Watcher<object> Watch(string resourceVersion, WatchRecorder recorder, bool bookmarks = true, int? timeoutSeconds = null) =>
        client.CustomObjects.WatchListNamespacedCustomObject(Group, Version, Ns, Plural, allowWatchBookmarks: bookmarks,
            resourceVersion: resourceVersion, timeoutSeconds: timeoutSeconds,
            onEvent: recorder.OnEvent, onError: recorder.OnError, onClosed: recorder.OnClosed);

    [Fact]
    public async Task A_list_then_a_watch_from_its_resource_version_sees_added_modified_deleted_in_order()
    {
        Seed("before");
        var version = await ListVersionAsync();
        var seen = new List<(WatchEventType Type, string Name)>();
        var errors = new List<Exception>();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Cancel);
        var reading = Task.Run(async () =>
        {
            await foreach (var (type, item) in client.CustomObjects.WatchListNamespacedCustomObjectAsync(Group, Version, Ns, Plural,
                               allowWatchBookmarks: true, resourceVersion: version, onError: errors.Add, cancellationToken: stop.Token))
            {
                seen.Add((type, ((JsonElement)item).GetProperty("metadata").GetProperty("name").GetString()!));
                if (seen.Count == 3)
                {
                    return;
                }
            }
        }, Cancel);
        await server.WaitForWatchesAsync(1, Cancel);

        server.Create(Tasks.Manifest(Ns, "backup", Spec()));
        server.MergePatch(Tasks, Ns, "backup", new JsonObject { ["spec"] = new JsonObject { ["every"] = "5m" } });
        server.Delete(Tasks, Ns, "backup");
        await reading.WaitAsync(TimeSpan.FromSeconds(5), Cancel);

        Assert.Equal([(WatchEventType.Added, "backup"), (WatchEventType.Modified, "backup"), (WatchEventType.Deleted, "backup")], seen);
        Assert.Empty(errors);
        var watch = Assert.Single(server.Requests, r => r.IsWatch);
        Assert.Equal("/apis/dtask.dev/v1alpha1/namespaces/jobs/scheduledtasks", watch.Path);
        Assert.Equal(version, watch.QueryParameters["resourceVersion"]);
        Assert.Equal("true", watch.QueryParameters["allowWatchBookmarks"]);
    }

    [Fact]
    public async Task A_watch_from_an_older_resource_version_replays_the_changes_since()
    {
        var version = await ListVersionAsync();
        Seed("a");
        Seed("b");
        var recorder = new WatchRecorder();
        using var watcher = Watch(version, recorder);

        Assert.Equal((WatchEventType.Added, "a"), await NextEventAsync(recorder));
        Assert.Equal((WatchEventType.Added, "b"), await NextEventAsync(recorder));
    }

    [Fact]
    public async Task A_cluster_wide_list_and_watch_cover_every_namespace()
    {
        server.Create(Tasks.Manifest("one", "a", Spec()));
        var version = await ListVersionAsync(ns: null);
        var recorder = new WatchRecorder();
        using var watcher = client.CustomObjects.WatchListClusterCustomObject(Group, Version, Plural, allowWatchBookmarks: true,
            resourceVersion: version, onEvent: recorder.OnEvent, onError: recorder.OnError, onClosed: recorder.OnClosed);
        await server.WaitForWatchesAsync(1, Cancel);

        server.Create(Tasks.Manifest("two", "b", Spec()));

        var added = await recorder.NextAsync();
        Assert.Equal(WatchEventType.Added, added.Type);
        Assert.Equal("two", added.Object.GetProperty("metadata").GetProperty("namespace").GetString());
        var list = await client.CustomObjects.ListClusterCustomObjectAsync<JsonElement>(Group, Version, Plural, cancellationToken: Cancel);
        Assert.Equal(2, list.GetProperty("items").GetArrayLength());
        Assert.Equal("ScheduledTaskList", list.GetProperty("kind").GetString());
        Assert.Contains(server.Requests, r => r.Path == "/apis/dtask.dev/v1alpha1/scheduledtasks" && r.IsWatch);
    }

    [Fact]
    public async Task Bookmarks_arrive_as_events_carrying_only_the_resource_version()
    {
        var version = await ListVersionAsync();
        var recorder = new WatchRecorder();
        using var watcher = Watch(version, recorder);
        await server.WaitForWatchesAsync(1, Cancel);
        Seed("a");
        Assert.Equal(WatchEventType.Added, (await recorder.NextAsync()).Type);

        server.SendBookmark();

        var bookmark = await recorder.NextAsync();
        Assert.Equal(WatchEventType.Bookmark, bookmark.Type);
        Assert.Equal(server.ResourceVersion.ToString(System.Globalization.CultureInfo.InvariantCulture), bookmark.ResourceVersion);
        Assert.False(bookmark.Object.GetProperty("metadata").TryGetProperty("name", out _));
    }

    [Fact]
    public async Task A_watch_that_did_not_ask_for_bookmarks_gets_none()
    {
        var recorder = new WatchRecorder();
        using var watcher = Watch(await ListVersionAsync(), recorder, bookmarks: false);
        await server.WaitForWatchesAsync(1, Cancel);

        server.SendBookmark();
        Seed("a");

        Assert.Equal(WatchEventType.Added, (await recorder.NextAsync()).Type);
    }

    [Fact]
    public async Task A_compaction_mid_watch_reaches_onError_as_a_KubernetesException_410_then_the_watch_closes()
    {
        var recorder = new WatchRecorder();
        using var watcher = Watch(await ListVersionAsync(), recorder);
        await server.WaitForWatchesAsync(1, Cancel);

        server.Compact();

        var error = await recorder.NextAsync();
        var expired = Assert.IsType<KubernetesException>(error.Error);
        Assert.Equal(410, expired.Status.Code);
        Assert.Equal("Expired", expired.Status.Reason);
        Assert.True((await recorder.NextAsync()).Closed);
        Assert.False(watcher.Watching);
    }

    [Fact]
    public async Task A_watch_from_a_compacted_version_gets_the_410_as_an_error_event_in_a_200_stream()
    {
        var version = await ListVersionAsync();
        Seed("a");
        server.Compact();
        var recorder = new WatchRecorder();
        using var watcher = Watch(version, recorder);

        var expired = Assert.IsType<KubernetesException>((await recorder.NextAsync()).Error);
        Assert.Equal(410, expired.Status.Code);
        Assert.True((await recorder.NextAsync()).Closed);
    }

    [Fact]
    public async Task A_watch_answered_410_Gone_reaches_onError_as_an_HttpOperationException_not_a_KubernetesException()
    {
        var version = await ListVersionAsync();
        Seed("a");
        server.Compact();
        server.ExpiredWatchAnswer = ExpiredWatchAnswer.HttpGone;
        var recorder = new WatchRecorder();
        using var watcher = Watch(version, recorder);

        var gone = Assert.IsType<HttpOperationException>((await recorder.NextAsync()).Error);
        Assert.Equal(HttpStatusCode.Gone, gone.Response.StatusCode);
        Assert.True((await recorder.NextAsync()).Closed);
    }

    [Fact]
    public async Task A_watch_answered_410_Gone_throws_from_the_async_enumerable()
    {
        var version = await ListVersionAsync();
        Seed("a");
        server.Compact();
        server.ExpiredWatchAnswer = ExpiredWatchAnswer.HttpGone;
        var errors = new List<Exception>();

        var thrown = await Assert.ThrowsAsync<HttpOperationException>(async () =>
        {
            await foreach (var _ in client.CustomObjects.WatchListNamespacedCustomObjectAsync(Group, Version, Ns, Plural,
                               resourceVersion: version, onError: errors.Add, cancellationToken: Cancel))
            {
            }
        });

        Assert.Equal(HttpStatusCode.Gone, thrown.Response.StatusCode);
        Assert.Empty(errors);
    }

    [Fact]
    public async Task A_compaction_mid_watch_reaches_the_async_enumerables_onError_and_ends_the_enumeration()
    {
        var errors = new List<Exception>();
        var version = await ListVersionAsync();
        var reading = Task.Run(async () =>
        {
            var events = 0;
            await foreach (var _ in client.CustomObjects.WatchListNamespacedCustomObjectAsync(Group, Version, Ns, Plural,
                               resourceVersion: version, onError: errors.Add, cancellationToken: Cancel))
            {
                events++;
            }

            return events;
        }, Cancel);
        await server.WaitForWatchesAsync(1, Cancel);

        server.Compact();

        Assert.Equal(0, await reading.WaitAsync(TimeSpan.FromSeconds(5), Cancel));
        var expired = Assert.IsType<KubernetesException>(Assert.Single(errors));
        Assert.Equal(410, expired.Status.Code);
    }

    [Fact]
    public async Task A_dropped_connection_reaches_onError_then_onClosed()
    {
        var recorder = new WatchRecorder();
        using var watcher = Watch(await ListVersionAsync(), recorder);
        await server.WaitForWatchesAsync(1, Cancel);

        server.DropWatchConnections();

        var error = await recorder.NextAsync();
        var transport = Assert.IsType<HttpRequestException>(error.Error);
        Assert.IsAssignableFrom<IOException>(transport.InnerException);
        Assert.True((await recorder.NextAsync()).Closed);
    }

    [Fact]
    public async Task A_dropped_connection_throws_from_the_async_enumerable()
    {
        var version = await ListVersionAsync();
        var reading = Task.Run(async () =>
        {
            await foreach (var _ in client.CustomObjects.WatchListNamespacedCustomObjectAsync(Group, Version, Ns, Plural,
                               resourceVersion: version, cancellationToken: Cancel))
            {
            }
        }, Cancel);
        await server.WaitForWatchesAsync(1, Cancel);

        server.DropWatchConnections();

        var thrown = await Assert.ThrowsAsync<HttpRequestException>(() => reading.WaitAsync(TimeSpan.FromSeconds(5), Cancel));
        Assert.IsAssignableFrom<IOException>(thrown.InnerException);
    }

    [Fact]
    public async Task A_watch_whose_timeout_expires_after_an_event_closes_without_an_error()
    {
        var version = await ListVersionAsync();
        Seed("a");
        var recorder = new WatchRecorder();
        using var watcher = Watch(version, recorder, timeoutSeconds: 1);

        Assert.Equal(WatchEventType.Added, (await recorder.NextAsync()).Type);
        Assert.True((await recorder.NextAsync()).Closed);
        Assert.Equal("1", server.Requests[^1].QueryParameters["timeoutSeconds"]);
    }

    [Fact]
    public async Task A_watch_that_ends_cleanly_before_its_first_event_reaches_onError_with_an_end_of_stream_then_onClosed()
    {
        var recorder = new WatchRecorder();
        using var watcher = Watch(await ListVersionAsync(), recorder, timeoutSeconds: 1);

        var error = await recorder.NextAsync();
        var transport = Assert.IsType<HttpRequestException>(error.Error);
        Assert.IsType<EndOfStreamException>(transport.InnerException);
        Assert.True((await recorder.NextAsync()).Closed);
    }

    [Fact]
    public async Task A_merge_patch_on_status_changes_only_status_and_keeps_the_generation()
    {
        var created = Seed("backup");
        server.ClearRequests();
        var patch = new V1Patch("""{"status":{"observedGeneration":1,"nextScheduleTime":"2030-01-01T00:00:00Z"},"spec":{"every":"9h"}}""",
            V1Patch.PatchType.MergePatch);

        var patched = await client.CustomObjects.PatchNamespacedCustomObjectStatusAsync<JsonElement>(patch, Group, Version, Ns, Plural, "backup",
            cancellationToken: Cancel);

        Assert.Equal(1, patched.GetProperty("status").GetProperty("observedGeneration").GetInt32());
        Assert.Equal("1m", patched.GetProperty("spec").GetProperty("every").GetString());
        Assert.Equal(1, patched.GetProperty("metadata").GetProperty("generation").GetInt64());
        Assert.NotEqual(created["metadata"]!["resourceVersion"]!.GetValue<string>(), patched.GetProperty("metadata").GetProperty("resourceVersion").GetString());
        var request = Assert.Single(server.Requests);
        Assert.Equal("PATCH", request.Method);
        Assert.Equal("/apis/dtask.dev/v1alpha1/namespaces/jobs/scheduledtasks/backup/status", request.Path);
        Assert.StartsWith("application/merge-patch+json", request.ContentType, StringComparison.Ordinal);
        Assert.True(request.IsStatusWrite);
    }

    [Fact]
    public async Task A_status_write_that_changes_nothing_does_not_bump_the_resource_version()
    {
        Seed("backup");
        var patch = new V1Patch("""{"status":{"observedGeneration":1}}""", V1Patch.PatchType.MergePatch);
        var first = await client.CustomObjects.PatchNamespacedCustomObjectStatusAsync<JsonElement>(patch, Group, Version, Ns, Plural, "backup", cancellationToken: Cancel);

        var second = await client.CustomObjects.PatchNamespacedCustomObjectStatusAsync<JsonElement>(patch, Group, Version, Ns, Plural, "backup", cancellationToken: Cancel);

        Assert.Equal(first.GetProperty("metadata").GetProperty("resourceVersion").GetString(), second.GetProperty("metadata").GetProperty("resourceVersion").GetString());
    }

    [Fact]
    public async Task A_spec_change_bumps_the_generation_a_label_or_status_change_on_the_main_resource_does_not()
    {
        Seed("backup");

        var labelled = await client.CustomObjects.PatchNamespacedCustomObjectAsync<JsonElement>(
            new V1Patch("""{"metadata":{"labels":{"team":"ops"}},"status":{"observedGeneration":7}}""", V1Patch.PatchType.MergePatch),
            Group, Version, Ns, Plural, "backup", cancellationToken: Cancel);
        var respecified = await client.CustomObjects.PatchNamespacedCustomObjectAsync<JsonElement>(
            new V1Patch("""{"spec":{"every":"5m"}}""", V1Patch.PatchType.MergePatch), Group, Version, Ns, Plural, "backup", cancellationToken: Cancel);

        Assert.Equal(1, labelled.GetProperty("metadata").GetProperty("generation").GetInt64());
        Assert.False(labelled.TryGetProperty("status", out _));
        Assert.Equal("ops", labelled.GetProperty("metadata").GetProperty("labels").GetProperty("team").GetString());
        Assert.Equal(2, respecified.GetProperty("metadata").GetProperty("generation").GetInt64());
        Assert.Equal("5m", respecified.GetProperty("spec").GetProperty("every").GetString());
    }

    [Fact]
    public async Task A_json_patch_adds_a_finalizer_and_a_failed_test_operation_is_refused_with_422()
    {
        Seed("backup");

        var added = await client.CustomObjects.PatchNamespacedCustomObjectAsync<JsonElement>(
            new V1Patch("""[{"op":"add","path":"/metadata/finalizers","value":["dtask.dev/consul"]}]""", V1Patch.PatchType.JsonPatch),
            Group, Version, Ns, Plural, "backup", cancellationToken: Cancel);
        var refused = await Assert.ThrowsAsync<HttpOperationException>(() => client.CustomObjects.PatchNamespacedCustomObjectAsync<JsonElement>(
            new V1Patch("""[{"op":"test","path":"/metadata/finalizers/0","value":"other"},{"op":"remove","path":"/metadata/finalizers/0"}]""", V1Patch.PatchType.JsonPatch),
            Group, Version, Ns, Plural, "backup", cancellationToken: Cancel));

        Assert.Equal("dtask.dev/consul", added.GetProperty("metadata").GetProperty("finalizers")[0].GetString());
        Assert.Equal(HttpStatusCode.UnprocessableEntity, refused.Response.StatusCode);
        Assert.Equal("dtask.dev/consul", server.Get(Tasks, Ns, "backup")!["metadata"]!["finalizers"]![0]!.GetValue<string>());
        Assert.StartsWith("application/json-patch+json", server.Requests[^1].ContentType, StringComparison.Ordinal);
    }

    public static TheoryData<string, string, string> JsonPatches => new()
    {
        { "replace a spec field", """[{"op":"replace","path":"/spec/every","value":"7m"}]""", """{"every":"7m","command":["true"]}""" },
        { "remove a spec field", """[{"op":"remove","path":"/spec/command"}]""", """{"every":"1m"}""" },
        { "append to an array", """[{"op":"add","path":"/spec/command/-","value":"x"}]""", """{"every":"1m","command":["true","x"]}""" },
        { "test then copy", """[{"op":"test","path":"/spec/every","value":"1m"},{"op":"copy","from":"/spec/every","path":"/spec/jitter"}]""", """{"every":"1m","command":["true"],"jitter":"1m"}""" },
        { "move a field", """[{"op":"move","from":"/spec/every","path":"/spec/timeout"}]""", """{"command":["true"],"timeout":"1m"}""" },
    };

    [Theory]
    [MemberData(nameof(JsonPatches))]
    public async Task A_json_patch_applies_each_operation_in_order(string row, string patch, string expectedSpec)
    {
        Seed("backup");

        var patched = await client.CustomObjects.PatchNamespacedCustomObjectAsync<JsonElement>(new V1Patch(patch, V1Patch.PatchType.JsonPatch),
            Group, Version, Ns, Plural, "backup", cancellationToken: Cancel);

        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(expectedSpec), JsonNode.Parse(patched.GetProperty("spec").GetRawText())), row);
        Assert.Equal(2, patched.GetProperty("metadata").GetProperty("generation").GetInt64());
    }

    [Fact]
    public async Task Deleting_an_object_with_a_finalizer_marks_it_and_removing_the_finalizer_deletes_it()
    {
        Seed("backup", "dtask.dev/consul");
        var recorder = new WatchRecorder();
        using var watcher = Watch(await ListVersionAsync(), recorder);
        await server.WaitForWatchesAsync(1, Cancel);

        using var deleting = await client.CustomObjects.DeleteNamespacedCustomObjectWithHttpMessagesAsync(Group, Version, Ns, Plural, "backup", cancellationToken: Cancel);
        var marked = await recorder.NextAsync();
        var stillThere = await client.CustomObjects.GetNamespacedCustomObjectAsync<JsonElement>(Group, Version, Ns, Plural, "backup", cancellationToken: Cancel);
        await client.CustomObjects.PatchNamespacedCustomObjectAsync<JsonElement>(
            new V1Patch("""{"metadata":{"finalizers":null}}""", V1Patch.PatchType.MergePatch), Group, Version, Ns, Plural, "backup", cancellationToken: Cancel);
        var deleted = await recorder.NextAsync();

        Assert.Equal(HttpStatusCode.Accepted, deleting.Response.StatusCode);
        Assert.Equal(WatchEventType.Modified, marked.Type);
        Assert.True(marked.Object.GetProperty("metadata").TryGetProperty("deletionTimestamp", out _));
        Assert.True(stillThere.GetProperty("metadata").TryGetProperty("deletionTimestamp", out _));
        Assert.Equal(WatchEventType.Deleted, deleted.Type);
        Assert.Equal("backup", deleted.Name);
        var missing = await Assert.ThrowsAsync<HttpOperationException>(() =>
            client.CustomObjects.GetNamespacedCustomObjectAsync<JsonElement>(Group, Version, Ns, Plural, "backup", cancellationToken: Cancel));
        Assert.Equal(HttpStatusCode.NotFound, missing.Response.StatusCode);
        Assert.Contains("\"reason\":\"NotFound\"", missing.Response.Content, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Deleting_an_object_without_finalizers_removes_it_at_once()
    {
        Seed("backup");

        using var deleted = await client.CustomObjects.DeleteNamespacedCustomObjectWithHttpMessagesAsync(Group, Version, Ns, Plural, "backup", cancellationToken: Cancel);

        Assert.Equal(HttpStatusCode.OK, deleted.Response.StatusCode);
        Assert.Null(server.Get(Tasks, Ns, "backup"));
        Assert.Equal("DELETE", server.Requests[^1].Method);
    }

    [Fact]
    public async Task An_update_with_a_stale_resource_version_is_refused_with_409()
    {
        var created = Seed("backup");
        server.MergePatch(Tasks, Ns, "backup", new JsonObject { ["spec"] = new JsonObject { ["every"] = "2m" } });
        var stale = (JsonObject)created.DeepClone();
        stale["spec"]!["every"] = "3m";

        var refused = await Assert.ThrowsAsync<HttpOperationException>(() =>
            client.CustomObjects.ReplaceNamespacedCustomObjectAsync<JsonElement>(stale, Group, Version, Ns, Plural, "backup", cancellationToken: Cancel));

        Assert.Equal(HttpStatusCode.Conflict, refused.Response.StatusCode);
        var status = JsonNode.Parse(refused.Response.Content)!;
        Assert.Equal("Status", status["kind"]!.GetValue<string>());
        Assert.Equal("Conflict", status["reason"]!.GetValue<string>());
        Assert.Equal("2m", server.Get(Tasks, Ns, "backup")!["spec"]!["every"]!.GetValue<string>());
        Assert.Equal("PUT", server.Requests[^1].Method);
    }

    [Fact]
    public async Task Creating_an_object_sets_what_the_server_owns_and_a_second_create_is_refused_with_409()
    {
        var manifest = Tasks.Manifest(Ns, "backup", Spec());
        manifest["status"] = new JsonObject { ["observedGeneration"] = 9 };

        var created = await client.CustomObjects.CreateNamespacedCustomObjectAsync<JsonElement>(manifest, Group, Version, Ns, Plural, cancellationToken: Cancel);
        var again = await Assert.ThrowsAsync<HttpOperationException>(() =>
            client.CustomObjects.CreateNamespacedCustomObjectAsync<JsonElement>(manifest, Group, Version, Ns, Plural, cancellationToken: Cancel));

        var metadata = created.GetProperty("metadata");
        Assert.Equal(1, metadata.GetProperty("generation").GetInt64());
        Assert.False(string.IsNullOrEmpty(metadata.GetProperty("uid").GetString()));
        Assert.False(string.IsNullOrEmpty(metadata.GetProperty("creationTimestamp").GetString()));
        Assert.False(string.IsNullOrEmpty(metadata.GetProperty("resourceVersion").GetString()));
        Assert.False(created.TryGetProperty("status", out _));
        Assert.Equal(HttpStatusCode.Conflict, again.Response.StatusCode);
        Assert.Contains("AlreadyExists", again.Response.Content, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Two_lease_lock_electors_elect_one_leader_and_the_other_takes_over_when_it_stops()
    {
        using var secondClient = server.CreateClient();
        await using var first = new Candidate(client, "operator-a");
        await using var second = new Candidate(secondClient, "operator-b");

        var leader = await Task.WhenAny(first.Leading, second.Leading).WaitAsync(TimeSpan.FromSeconds(5), Cancel);
        var (winner, other) = leader == first.Leading ? (first, second) : (second, first);
        await Task.Delay(TimeSpan.FromSeconds(1), Cancel);
        Assert.False(other.Leading.IsCompleted);
        Assert.Equal(winner.Identity, server.Get(KubernetesResourceType.Leases, "dtask-system", "dtask-operator")!["spec"]!["holderIdentity"]!.GetValue<string>());

        var stoppedAt = TimeProvider.System.GetTimestamp();
        await winner.DisposeAsync();
        await other.Leading.WaitAsync(TimeSpan.FromSeconds(5), Cancel);

        // The follower takes over once the lease (2 s) has gone unrenewed since it last saw it change, plus a retry.
        Assert.True(TimeProvider.System.GetElapsedTime(stoppedAt) < TimeSpan.FromSeconds(4));
        Assert.Equal(other.Identity, server.Get(KubernetesResourceType.Leases, "dtask-system", "dtask-operator")!["spec"]!["holderIdentity"]!.GetValue<string>());
        await other.DisposeAsync();
        Assert.Contains(server.Requests, r => r.Method == "POST" && r.Path == "/apis/coordination.k8s.io/v1/namespaces/dtask-system/leases");
        Assert.Contains(server.Requests, r => r.Method == "PUT" && r.Path == "/apis/coordination.k8s.io/v1/namespaces/dtask-system/leases/dtask-operator");
    }

    private static async Task<(WatchEventType?, string)> NextEventAsync(WatchRecorder recorder)
    {
        var notice = await recorder.NextAsync();
        return (notice.Type, notice.Name);
    }

    /// <summary>One operator replica running a leader elector until stopped.</summary>
    private sealed class Candidate : IAsyncDisposable
    {
        private readonly CancellationTokenSource stop = new();
        private readonly TaskCompletionSource leading = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly Task running;

        public Candidate(IKubernetes client, string identity)
        {
            Identity = identity;
            var elector = new LeaderElector(new LeaderElectionConfig(new LeaseLock(client, "dtask-system", "dtask-operator", identity))
            {
                LeaseDuration = TimeSpan.FromSeconds(2),
                RenewDeadline = TimeSpan.FromSeconds(1.5),
                RetryPeriod = TimeSpan.FromSeconds(0.3),
            });
            elector.OnStartedLeading += () => leading.TrySetResult();
            running = elector.RunUntilLeadershipLostAsync(stop.Token);
        }

        public string Identity { get; }

        public Task Leading => leading.Task;

        public async ValueTask DisposeAsync()
        {
            if (stop.IsCancellationRequested)
            {
                return;
            }

            await stop.CancelAsync();
            try
            {
                await running;
            }
            catch (OperationCanceledException)
            {
            }

        }
    }
}
