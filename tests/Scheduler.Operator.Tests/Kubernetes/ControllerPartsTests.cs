using System.Text.Json.Nodes;
using Dtask.Core.Durations;
using Dtask.Core.Model;
using Dtask.Operator.Sources.Kubernetes;
using Microsoft.Extensions.Time.Testing;

namespace Dtask.Operator.Tests.Kubernetes;

/// <summary>The pure parts of the Kubernetes source: the queue of names, the status merge patch, the backoff.</summary>
public sealed class ControllerPartsTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_name_queued_twice_is_taken_once_and_one_queued_while_reconciled_comes_back_after_Done()
    {
        using var queue = new PendingReconciles<string>();
        queue.Add("a");
        queue.Add("b");
        queue.Add("a");

        Assert.Equal("a", await queue.TakeAsync(Ct));
        queue.Add("a");
        Assert.Equal("b", await queue.TakeAsync(Ct));
        using var none = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => queue.TakeAsync(none.Token));

        queue.Done("a");
        Assert.Equal("a", await queue.TakeAsync(Ct));
    }

    [Fact]
    public async Task AddAfter_queues_on_the_injected_clock_and_the_earlier_of_two_delays_wins()
    {
        var time = new FakeTimeProvider();
        using var queue = new PendingReconciles<string>(time);
        queue.AddAfter("a", TimeSpan.FromMinutes(5));
        queue.AddAfter("a", TimeSpan.FromSeconds(10));

        var taking = queue.TakeAsync(Ct);
        time.Advance(TimeSpan.FromSeconds(9));
        Assert.False(taking.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal("a", await taking.WaitAsync(TimeSpan.FromSeconds(5), Ct));
    }

    private static ScheduledTaskObject Version(string resourceVersion, bool withStatus) => ScheduledTaskObject.From(new JsonObject
    {
        ["metadata"] = new JsonObject { ["name"] = "backup", ["namespace"] = "jobs", ["resourceVersion"] = resourceVersion, ["generation"] = 1, ["finalizers"] = new JsonArray("dtask.dev/cleanup") },
        ["status"] = withStatus ? new JsonObject { ["observedGeneration"] = 1 } : null,
    })!;

    [Fact]
    public void A_late_watch_event_older_than_the_answer_to_the_operators_own_patch_does_not_replace_it_in_the_cache()
    {
        var cache = new TaskObjectCache();
        var name = new TaskId("jobs", "backup");
        Assert.True(cache.Put(Version("2", withStatus: false)));
        cache.PutAnswer("2", Version("3", withStatus: true));

        // The watch now delivers the version the patch was made from, then the patch's own version.
        Assert.False(cache.Put(Version("2", withStatus: false)));
        Assert.Equal("3", cache.Fresh(name)!.ResourceVersion);
        Assert.NotNull(cache.Fresh(name)!.Status);
        Assert.False(cache.Put(Version("3", withStatus: true)));

        // An answer whose base the cache no longer holds still wins over an older cached version, never over a newer one.
        cache.PutAnswer("1", Version("5", withStatus: true));
        Assert.Equal("5", cache.Fresh(name)!.ResourceVersion);
        cache.PutAnswer("3", Version("4", withStatus: true));
        Assert.Equal("5", cache.Fresh(name)!.ResourceVersion);
        cache.PutFetched(Version("4", withStatus: true));
        Assert.Equal("5", cache.Fresh(name)!.ResourceVersion);

        // A change by someone else after the answer is taken.
        Assert.False(cache.Put(Version("6", withStatus: false)));
        Assert.Equal("6", cache.Fresh(name)!.ResourceVersion);
    }

    public static TheoryData<string, ScheduledTaskStatus?, ScheduledTaskStatus, string?> Patches => new()
    {
        { "no status yet: everything", null, new ScheduledTaskStatus { ObservedGeneration = 1 }, """{"status":{"observedGeneration":1}}""" },
        { "the same status: no patch", new ScheduledTaskStatus { ObservedGeneration = 1 }, new ScheduledTaskStatus { ObservedGeneration = 1 }, null },
        {
            "a new run: finishedAt and exitCode of the old one are removed",
            new ScheduledTaskStatus { LastRun = new LastRunStatus { Node = "a", FinishedAt = DateTimeOffset.UnixEpoch, ExitCode = 0, Result = "succeeded" } },
            new ScheduledTaskStatus { LastRun = new LastRunStatus { Node = "b", Result = "running" } },
            """{"status":{"lastRun":{"node":"b","result":"running","finishedAt":null,"exitCode":null}}}"""
        },
        {
            "suspended: nextScheduleTime is removed",
            new ScheduledTaskStatus { ObservedGeneration = 2, NextScheduleTime = DateTimeOffset.UnixEpoch },
            new ScheduledTaskStatus { ObservedGeneration = 2 },
            """{"status":{"nextScheduleTime":null}}"""
        },
    };

    [Theory]
    [MemberData(nameof(Patches))]
    public void The_status_patch_names_only_what_changed_and_nulls_what_went(string row, ScheduledTaskStatus? current, ScheduledTaskStatus desired, string? expected)
    {
        var patch = StatusPatch.Between(current, desired);

        Assert.True(JsonNode.DeepEquals(expected is null ? null : JsonNode.Parse(expected), patch), $"{row}: {patch?.ToJsonString()}");
    }

    [Fact]
    public void Backoff_doubles_up_to_its_cap_with_jitter_and_starts_over_after_Reset()
    {
        var backoff = new Backoff(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(8), new Random(7));

        var delays = Enumerable.Range(0, 6).Select(_ => backoff.Next().TotalSeconds).ToList();
        backoff.Reset();

        Assert.All(delays.Zip([1.0, 2, 4, 8, 8, 8]), d => Assert.InRange(d.First, d.Second / 2, d.Second));
        Assert.InRange(backoff.Next().TotalSeconds, 0.5, 1);
    }
}
