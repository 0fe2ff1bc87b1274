using Dtask.Core.Manifests;
using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Core.Validation;
using Dtask.Operator.Status;

namespace Dtask.Operator.Tests;

public sealed class StatusBuilderTests
{
    private static readonly DateTimeOffset Now = new(2026, 3, 10, 12, 0, 30, TimeSpan.Zero);
    private static readonly long SlotA = new DateTimeOffset(2026, 3, 10, 11, 58, 0, TimeSpan.Zero).ToUnixTimeSeconds();
    private static readonly long SlotB = new DateTimeOffset(2026, 3, 10, 11, 59, 0, TimeSpan.Zero).ToUnixTimeSeconds();
    private static readonly long SlotC = new DateTimeOffset(2026, 3, 10, 12, 0, 0, TimeSpan.Zero).ToUnixTimeSeconds();

    private static KvTaskSpec Stored(bool suspend = false, long generation = 3) => KvTaskSpec.From(new ScheduledTask
    {
        Metadata = new ObjectMeta { Name = "backup", Namespace = "ops", Generation = generation },
        Spec = new ScheduledTaskSpec { Every = "1m", Command = ["true"], Suspend = suspend ? true : null },
    }, TaskOwner.Cli);

    private static RunRecord Run(long slot, RunState state, int? exit = null, string node = "node-a") => new()
    {
        Slot = slot,
        RunId = $"run-{slot}",
        Node = node,
        State = state,
        StartedAt = DateTimeOffset.FromUnixTimeSeconds(slot).AddSeconds(1),
        FinishedAt = state == RunState.Running ? null : DateTimeOffset.FromUnixTimeSeconds(slot).AddSeconds(5),
        ExitCode = exit,
    };

    /// <summary>An expected status in short: condition statuses and reasons, and the times as text.</summary>
    public sealed record Expected(string Ready, string Synced, string? LastSchedule, string? LastSuccess, string? LastRun, string? Next, long? ObservedGeneration);

    public static TheoryData<string, KvTaskSpec?, FieldError[]?, RunRecord?, RunRecord[], Expected> Rows => new()
    {
        {
            "never ran, valid and in Consul",
            Stored(), null, null, [],
            new("True/Valid", "True/Synced", null, null, null, "2026-03-10T12:01:00Z", 3)
        },
        {
            "running now",
            Stored(), null, Run(SlotC, RunState.Running), [Run(SlotB, RunState.Succeeded, 0)],
            new("True/Valid", "True/Synced", "2026-03-10T12:00:00Z", "2026-03-10T11:59:05Z", "2026-03-10T12:00:00Z node-a running exit -", "2026-03-10T12:01:00Z", 3)
        },
        {
            "succeeded then failed",
            Stored(), null, Run(SlotB, RunState.Failed, 2, "node-b"), [Run(SlotA, RunState.Succeeded, 0), Run(SlotB, RunState.Failed, 2, "node-b")],
            new("True/Valid", "True/Synced", "2026-03-10T11:59:00Z", "2026-03-10T11:58:05Z", "2026-03-10T11:59:00Z node-b failed exit 2", "2026-03-10T12:01:00Z", 3)
        },
        {
            "a missed slot is the last run but not the last schedule",
            Stored(), null, Run(SlotC, RunState.Missed), [Run(SlotB, RunState.Succeeded, 0), Run(SlotC, RunState.Missed)],
            new("True/Valid", "True/Synced", "2026-03-10T11:59:00Z", "2026-03-10T11:59:05Z", "2026-03-10T12:00:00Z node-a missed exit -", "2026-03-10T12:01:00Z", 3)
        },
        {
            "suspended has no next schedule",
            Stored(suspend: true), null, null, [],
            new("True/Valid", "True/Synced", null, null, null, null, 3)
        },
        {
            "invalid, the previous spec stays in Consul",
            Stored(), [new FieldError("spec.every", "is not a duration")], null, [],
            new("False/Invalid", "False/Invalid", null, null, null, "2026-03-10T12:01:00Z", 3)
        },
        {
            "invalid and never written",
            null, [new FieldError("spec", "needs schedule or every")], null, [],
            new("False/Invalid", "False/Invalid", null, null, null, null, null)
        },
        {
            "valid but not in Consul",
            null, null, null, [],
            new("False/NotInConsul", "False/NotInConsul", null, null, null, null, null)
        },
    };

    [Theory]
    [MemberData(nameof(Rows))]
    public void Status_is_rebuilt_from_observations(string row, KvTaskSpec? stored, FieldError[]? errors, RunRecord? current, RunRecord[] history, Expected expected)
    {
        _ = row;
        var status = TaskStatusBuilder.Build(stored, errors, current, history, Now);

        Assert.Equal(expected, Summarize(status));
    }

    [Fact]
    public void The_invalid_condition_carries_the_validators_messages()
    {
        var status = TaskStatusBuilder.Build(Stored(), [new FieldError("spec.every", "is not a duration")], null, [], Now);

        var ready = Assert.Single(status.Conditions!, c => c.Type == TaskCondition.Ready);
        Assert.Equal("spec.every: is not a duration", ready.Message);
        Assert.Contains("Consul keeps generation 3", Assert.Single(status.Conditions!, c => c.Type == TaskCondition.Synced).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Synced_is_false_when_Consul_holds_another_generation_or_another_owner()
    {
        var stored = Stored(generation: 3);

        var behind = TaskStatusBuilder.Build(stored, null, null, [], Now, new DesiredSpec(4, "sha256:other", TaskOwner.Cli));
        var foreign = TaskStatusBuilder.Build(stored, null, null, [], Now, new DesiredSpec(3, stored.SpecHash, TaskOwner.Kubernetes));
        var same = TaskStatusBuilder.Build(stored, null, null, [], Now, new DesiredSpec(3, stored.SpecHash, TaskOwner.Cli));

        Assert.Equal(("False", "OutOfDate", 4L), Synced(behind));
        Assert.Equal(("False", "OwnedByAnotherSource", 3L), Synced(foreign));
        Assert.Equal(("True", "Synced", 3L), Synced(same));
    }

    [Fact]
    public void Equal_observations_give_equal_statuses_and_transition_times_carry_over()
    {
        var first = TaskStatusBuilder.Build(Stored(), null, null, [], Now);
        var again = TaskStatusBuilder.Build(Stored(), null, null, [], Now);
        Assert.Equal(Summarize(first), Summarize(again));

        var stamped = TaskStatusBuilder.WithTransitionTimes(first, null, Now);
        var later = TaskStatusBuilder.WithTransitionTimes(again, stamped, Now.AddHours(1));
        var flipped = TaskStatusBuilder.WithTransitionTimes(TaskStatusBuilder.Build(null, null, null, [], Now), stamped, Now.AddHours(2));

        Assert.All(later.Conditions!, c => Assert.Equal(Now, c.LastTransitionTime));
        Assert.All(flipped.Conditions!, c => Assert.Equal(Now.AddHours(2), c.LastTransitionTime));
    }

    private static (string?, string?, long) Synced(ScheduledTaskStatus status)
    {
        var synced = status.Conditions!.Single(c => c.Type == TaskCondition.Synced);
        return (synced.Status, synced.Reason, status.ObservedGeneration!.Value);
    }

    private static Expected Summarize(ScheduledTaskStatus status)
    {
        static string? Text(DateTimeOffset? at) => at?.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture);
        string Condition(string type) => status.Conditions!.Single(c => c.Type == type) is var c ? $"{c.Status}/{c.Reason}" : "";
        var run = status.LastRun is { } r ? $"{Text(r.Slot)} {r.Node} {r.Result} exit {(r.ExitCode?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "-")}" : null;
        return new Expected(Condition(TaskCondition.Ready), Condition(TaskCondition.Synced), Text(status.LastScheduleTime), Text(status.LastSuccessfulTime),
            run, Text(status.NextScheduleTime), status.ObservedGeneration);
    }
}
