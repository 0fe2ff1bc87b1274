using System.Text.Json;
using Dtask.Core.Manifests;
using Dtask.Core.Model;
using Dtask.Core.Scheduling;
using Dtask.Core.State;
using Dtask.Core.Validation;

namespace Dtask.Operator.Status;

/// <summary>
/// What a source wants KV to hold for a task, so <c>Synced</c> can say whether it does: the source's generation and
/// spec hash, and the source itself (a task held by another source is not synced from this one).
/// </summary>
/// <param name="Generation">The source's generation (<c>metadata.generation</c> in Kubernetes).</param>
/// <param name="SpecHash"><see cref="TaskJson.SpecHash"/> of the source's spec.</param>
/// <param name="Owner">The source.</param>
public sealed record DesiredSpec(long Generation, string SpecHash, TaskOwner Owner);

/// <summary>
/// Builds a task's <see cref="ScheduledTaskStatus"/> from observations only — the stored envelope, the validator's
/// verdict, the run records and the clock — never from an earlier status. A pure function: equal inputs give equal
/// statuses, so a caller can skip writing a status that did not change.
/// </summary>
public static class TaskStatusBuilder
{
    /// <summary>Ready: the spec is valid and in KV.</summary>
    public const string ReasonValid = "Valid";

    /// <summary>Ready/Synced: the declaration failed validation.</summary>
    public const string ReasonInvalid = "Invalid";

    /// <summary>Ready/Synced: KV holds no spec of the task.</summary>
    public const string ReasonNotInConsul = "NotInConsul";

    /// <summary>Synced: KV holds the spec of this generation.</summary>
    public const string ReasonSynced = "Synced";

    /// <summary>Synced: KV holds another generation or spec hash.</summary>
    public const string ReasonOutOfDate = "OutOfDate";

    /// <summary>Synced: another source owns the task in KV.</summary>
    public const string ReasonOwnedElsewhere = "OwnedByAnotherSource";

    /// <summary>Builds the status.</summary>
    /// <param name="stored">The envelope in KV, or null when there is none.</param>
    /// <param name="validationErrors">The validator's errors for the source's declaration; null or empty when valid (or not known).</param>
    /// <param name="current">The run record at <c>state/&lt;ns&gt;/&lt;name&gt;/run</c>.</param>
    /// <param name="history">The finished run records.</param>
    /// <param name="now">The current instant.</param>
    /// <param name="desired">What the source wants in KV; when null, KV's own envelope counts as the desired one.</param>
    public static ScheduledTaskStatus Build(KvTaskSpec? stored, IReadOnlyList<FieldError>? validationErrors, RunRecord? current,
        IReadOnlyList<RunRecord> history, DateTimeOffset now, DesiredSpec? desired = null)
    {
        ArgumentNullException.ThrowIfNull(history);
        var errors = validationErrors ?? [];
        var runs = current is null ? history : [.. history, current];

        var claimed = runs.Where(r => !r.IsManual && r.State is not (RunState.Skipped or RunState.Missed)).ToList(); // Manual runs are not slots.
        var succeeded = runs.Where(r => r.State == RunState.Succeeded).ToList();
        var latest = Latest(current, history);

        return new ScheduledTaskStatus
        {
            ObservedGeneration = desired?.Generation ?? stored?.Generation,
            LastScheduleTime = claimed.Count == 0 ? null : DateTimeOffset.FromUnixTimeSeconds(claimed.Max(r => r.Slot)),
            LastSuccessfulTime = succeeded.Count == 0 ? null : succeeded.Max(r => r.FinishedAt ?? DateTimeOffset.FromUnixTimeSeconds(r.Slot)),
            LastRun = latest is null ? null : new LastRunStatus
            {
                Slot = DateTimeOffset.FromUnixTimeSeconds(latest.Slot),
                Node = latest.Node,
                StartedAt = latest.StartedAt,
                FinishedAt = latest.FinishedAt,
                ExitCode = latest.ExitCode,
                Result = ResultWord(latest.State),
            },
            NextScheduleTime = NextSlot(stored, now),
            Conditions = [Ready(stored, errors), Synced(stored, errors, desired)],
        };
    }

    /// <summary>The word a run state is written as in KV and in status (<c>running</c>, <c>succeeded</c>, <c>timedOut</c>…).</summary>
    public static string ResultWord(RunState state) => JsonSerializer.Serialize(state).Trim('"');

    /// <summary>
    /// Copies each condition's <see cref="TaskCondition.LastTransitionTime"/> from <paramref name="previous"/> when its
    /// status did not change, and sets it to <paramref name="now"/> when it did: the one use of an earlier status,
    /// for display only.
    /// </summary>
    public static ScheduledTaskStatus WithTransitionTimes(ScheduledTaskStatus status, ScheduledTaskStatus? previous, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(status);
        var conditions = (status.Conditions ?? []).Select(c =>
        {
            var before = previous?.Conditions?.FirstOrDefault(p => p.Type == c.Type);
            return c with { LastTransitionTime = before is not null && before.Status == c.Status ? before.LastTransitionTime ?? now : now };
        }).ToList();
        return status with { Conditions = conditions };
    }

    private static RunRecord? Latest(RunRecord? current, IReadOnlyList<RunRecord> history)
    {
        var latestFinished = history.Count == 0 ? null : history.MaxBy(r => r.OrderKey);
        if (current is null)
        {
            return latestFinished;
        }

        return latestFinished is not null && latestFinished.OrderKey > current.OrderKey ? latestFinished : current;
    }

    private static DateTimeOffset? NextSlot(KvTaskSpec? stored, DateTimeOffset now)
    {
        if (stored is null || stored.Spec.IsSuspended)
        {
            return null;
        }

        try
        {
            return TaskSchedule.Create(stored.Spec.ToScheduleSpec(stored.Key)).Next(now);
        }
        catch (Exception e) when (e is ArgumentException or FormatException)
        {
            // Only valid specs reach KV; one written by hand may still be broken, and then has no next slot.
            return null;
        }
    }

    private static TaskCondition Ready(KvTaskSpec? stored, IReadOnlyList<FieldError> errors)
    {
        if (errors.Count > 0)
        {
            return Condition(TaskCondition.Ready, false, ReasonInvalid, string.Join("; ", errors));
        }

        return stored is null
            ? Condition(TaskCondition.Ready, false, ReasonNotInConsul, "the task is not in Consul")
            : Condition(TaskCondition.Ready, true, ReasonValid, "the spec is valid and in Consul");
    }

    private static TaskCondition Synced(KvTaskSpec? stored, IReadOnlyList<FieldError> errors, DesiredSpec? desired)
    {
        if (errors.Count > 0)
        {
            return Condition(TaskCondition.Synced, false, ReasonInvalid, stored is null
                ? "the spec is invalid and was not written to Consul"
                : $"the spec is invalid and was not written; Consul keeps generation {stored.Generation}");
        }

        if (stored is null)
        {
            return Condition(TaskCondition.Synced, false, ReasonNotInConsul, "the task is not in Consul");
        }

        if (desired is not null && stored.Owner != desired.Owner)
        {
            return Condition(TaskCondition.Synced, false, ReasonOwnedElsewhere, $"{stored.Key} is owned by {stored.Owner}; not changed");
        }

        if (desired is not null && (stored.Generation != desired.Generation || !string.Equals(stored.SpecHash, desired.SpecHash, StringComparison.Ordinal)))
        {
            return Condition(TaskCondition.Synced, false, ReasonOutOfDate,
                $"Consul holds generation {stored.Generation} ({stored.SpecHash}), the source has generation {desired.Generation} ({desired.SpecHash})");
        }

        return Condition(TaskCondition.Synced, true, ReasonSynced, $"Consul holds generation {stored.Generation}");
    }

    private static TaskCondition Condition(string type, bool status, string reason, string message) => new()
    {
        Type = type,
        Status = status ? "True" : "False",
        Reason = reason,
        Message = message,
    };
}
