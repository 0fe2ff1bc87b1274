using System.Text.Json;
using System.Text.Json.Nodes;
using Dtask.Core.Manifests;
using Dtask.Core.Model;
using Dtask.Core.Tests.Support;

namespace Dtask.Core.Tests.Model;

public sealed class TaskJsonTests
{
    private static readonly string FullTaskJson = """
        {"apiVersion":"dtask.dev/v1alpha1","kind":"ScheduledTask","metadata":{"name":"backup","namespace":"ops","labels":{"team":"infra","app.kubernetes.io/name":"backup"},"annotations":{"note":"nightly"},"generation":3,"uid":"5f1c","resourceVersion":"1234","creationTimestamp":"2025-03-01T10:00:00Z"},
        "spec":{"schedule":"30 2 * * *","timeZone":"Europe/Berlin","jitter":"30s","command":["sh","-c","echo \"ok\" && date"],"env":[{"name":"MODE","value":"full"},{"name":"EMPTY"}],"workingDir":"/var/backups","timeout":"1h30m","concurrencyPolicy":"Replace","startingDeadline":"10m","missedRunPolicy":"RunOnce","retries":{"limit":2,"backoff":"1.5m"},"nodeSelector":{"zone":"b","disk":"ssd"},"placement":"RoundRobin","suspend":false,"notify":{"slack":{"on":["start","failure","lost"],"channel":"#ops"},"datadog":{"tags":["team:infra"]}},"history":30},
        "status":{"observedGeneration":3,"lastScheduleTime":"2025-03-30T00:30:00Z","lastSuccessfulTime":"2025-03-30T00:31:12.5Z","lastRun":{"slot":"2025-03-30T00:30:00Z","node":"node-a","startedAt":"2025-03-30T00:30:00.012Z","finishedAt":"2025-03-30T00:31:12.5Z","exitCode":0,"result":"succeeded"},"nextScheduleTime":"2025-03-31T00:30:00Z","conditions":[{"type":"Ready","status":"True","reason":"Valid","message":"","lastTransitionTime":"2025-03-01T10:00:01Z"}]}}
        """.ReplaceLineEndings("");

    [Fact]
    public void A_complete_task_round_trips_to_the_same_json_text()
    {
        var task = TaskJson.Deserialize<ScheduledTask>(FullTaskJson);

        Assert.Equal(FullTaskJson, TaskJson.Serialize(task));
    }

    [Fact]
    public void Reading_keeps_every_field()
    {
        var task = TaskJson.Deserialize<ScheduledTask>(FullTaskJson);

        Assert.Equal("ops/backup", task.Key);
        Assert.Equal(ConcurrencyPolicy.Replace, task.Spec.ConcurrencyPolicy);
        Assert.Equal(TimeSpan.FromMinutes(90), task.Spec.TimeoutDuration);
        Assert.Equal(TimeSpan.FromSeconds(90), task.Spec.Retries!.BackoffDuration);
        Assert.Equal([NotifyEvent.Start, NotifyEvent.Failure, NotifyEvent.Lost], task.Spec.Notify!.Slack!.On);
        Assert.Equal(new DateTimeOffset(2025, 3, 30, 0, 31, 12, 500, TimeSpan.Zero), task.Status!.LastRun!.FinishedAt);
        Assert.Equal(new DateTimeOffset(2025, 3, 1, 10, 0, 0, TimeSpan.Zero), task.Metadata.CreationTimestamp);
    }

    [Fact]
    public void Absent_fields_are_omitted_and_defaults_come_from_accessors()
    {
        var task = new ScheduledTask
        {
            Metadata = new ObjectMeta { Name = "tick" },
            Spec = new ScheduledTaskSpec { Every = "5s", Command = ["date"] },
        };

        Assert.Equal(
            """{"apiVersion":"dtask.dev/v1alpha1","kind":"ScheduledTask","metadata":{"name":"tick"},"spec":{"every":"5s","command":["date"]}}""",
            TaskJson.Serialize(task));
        Assert.Equal("default/tick", task.Key);
        Assert.Equal(ConcurrencyPolicy.Forbid, task.Spec.EffectiveConcurrencyPolicy);
        Assert.Equal(MissedRunPolicy.Skip, task.Spec.EffectiveMissedRunPolicy);
        Assert.Equal(Placement.Any, task.Spec.EffectivePlacement);
        Assert.Equal(10, task.Spec.EffectiveHistory);
        Assert.False(task.Spec.IsSuspended);
        Assert.Equal(TimeSpan.Zero, task.Spec.JitterDuration);
        Assert.Null(task.Spec.TimeoutDuration);
    }

    [Fact]
    public void Enum_words_are_case_sensitive_and_numbers_are_refused()
    {
        Assert.Throws<JsonException>(() => TaskJson.Deserialize<ScheduledTaskSpec>("""{"concurrencyPolicy":"forbid"}"""));
        Assert.Throws<JsonException>(() => TaskJson.Deserialize<ScheduledTaskSpec>("""{"concurrencyPolicy":1}"""));
    }

    [Fact]
    public void Timestamps_are_written_in_utc_with_z()
    {
        var status = new ScheduledTaskStatus { NextScheduleTime = new DateTimeOffset(2025, 3, 30, 3, 0, 0, TimeSpan.FromHours(2)) };

        Assert.Equal("""{"nextScheduleTime":"2025-03-30T01:00:00Z"}""", TaskJson.Serialize(status));
    }

    public static TheoryData<string> Examples() => [.. RepoFiles.Yaml("examples")];

    [Theory]
    [MemberData(nameof(Examples))]
    public void Every_example_reads_into_the_model_without_losing_a_field(string example)
    {
        var documents = ManifestReader.ReadPath(RepoFiles.Path(example));
        var raw = YamlDocumentReader.Read(File.ReadAllText(RepoFiles.Path(example))).Where(d => d.Content is not null).ToList();

        Assert.Equal(raw.Count, documents.Count);
        for (var i = 0; i < documents.Count; i++)
        {
            var task = Assert.IsType<ScheduledTask>(documents[i].Task);
            var written = JsonNode.Parse(TaskJson.Serialize(task));
            Assert.True(
                JsonNode.DeepEquals(raw[i].Content, written),
                $"{example}[{i}] read as {written!.ToJsonString()}\nbut the YAML is {raw[i].Content!.ToJsonString()}");
            Assert.Equal(TaskJson.Serialize(task), TaskJson.Serialize(TaskJson.Deserialize<ScheduledTask>(TaskJson.Serialize(task))));
        }
    }

    [Fact]
    public void The_schedule_spec_carries_the_parsed_schedule_and_the_hash_key()
    {
        var spec = new ScheduledTaskSpec { Every = "90s", Jitter = "5s", TimeZone = "Europe/Berlin", Command = ["x"] };

        var scheduleSpec = spec.ToScheduleSpec("ops/backup");

        Assert.Equal(new Dtask.Core.Scheduling.ScheduleSpec(null, TimeSpan.FromSeconds(90), "Europe/Berlin", TimeSpan.FromSeconds(5), "ops/backup"), scheduleSpec);
    }
}
