using Dtask.Core.Manifests;
using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Core.Scheduling;
using Dtask.Core.Validation;
using Dtask.Executor.Claims;
using Dtask.Executor.Notifications;
using Serilog;

namespace Dtask.Executor.Daemon;

/// <summary>A valid task as read from <c>tasks/&lt;ns&gt;/&lt;name&gt;</c>, with its schedule built.</summary>
/// <param name="Id">The task.</param>
/// <param name="Spec">Its spec.</param>
/// <param name="Schedule">Its schedule.</param>
/// <param name="ModifyIndex">The KV ModifyIndex of the value it was read from (a change re-plans the task).</param>
public sealed record TaskDefinition(TaskId Id, ScheduledTaskSpec Spec, TaskSchedule Schedule, ulong ModifyIndex)
{
    /// <summary>The task's notification settings, as the notifiers take them.</summary>
    public TaskNotification Notification { get; } = NotificationOf(Spec);

    /// <summary>When the task was last resumed (<see cref="KvTaskSpec.ResumedAt"/>): slots at or before it are not due.</summary>
    public DateTimeOffset? ResumedAt { get; init; }

    /// <summary>True when this node's labels satisfy the task's <c>nodeSelector</c>.</summary>
    public bool Selects(IReadOnlyDictionary<string, string> labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        return Spec.NodeSelector is not { Count: > 0 } selector
            || selector.All(s => labels.TryGetValue(s.Key, out var value) && value == s.Value);
    }

    private static TaskNotification NotificationOf(ScheduledTaskSpec spec)
    {
        IReadOnlySet<NotificationEvent>? slackOn = spec.Notify?.Slack is { } slack
            ? slack.EffectiveEvents.Select(e => e switch
            {
                NotifyEvent.Start => NotificationEvent.Start,
                NotifyEvent.Success => NotificationEvent.Success,
                NotifyEvent.Failure => NotificationEvent.Failure,
                NotifyEvent.Missed => NotificationEvent.Missed,
                _ => NotificationEvent.Lost,
            }).ToHashSet()
            : null;
        return new TaskNotification(slackOn, spec.Notify?.Datadog?.Tags ?? []);
    }
}

/// <summary>
/// Turns the values under <c>tasks/</c> into <see cref="TaskDefinition"/>s. A value that does not parse, names another
/// task than its key, or fails validation is left out and logged as an error once per ModifyIndex (so a watch that
/// sees it again does not repeat the message); every other task is unaffected. With trusted keys, a spec whose
/// signature does not verify is refused the same way, and the last verified spec of that task keeps running.
/// </summary>
public sealed class TaskSpecReader(KvLayout layout, ILogger logger, TrustedSpecKeys? trusted = null)
{
    private readonly HashSet<(string Key, ulong Index)> reported = [];
    private readonly Dictionary<TaskId, TaskDefinition> verified = [];
    private readonly List<(TaskId Task, ulong SpecIndex, string Reason, ulong? KeptIndex)> refusals = [];

    /// <summary>The specs refused (signature not verified) by the last <see cref="Read"/> for the first time.</summary>
    public IReadOnlyList<(TaskId Task, ulong SpecIndex, string Reason, ulong? KeptIndex)> NewRefusals => refusals;

    /// <summary>The valid tasks among <paramref name="pairs"/>.</summary>
    public IReadOnlyDictionary<TaskId, TaskDefinition> Read(IEnumerable<Consul.Kv.KvPair> pairs)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        var tasks = new Dictionary<TaskId, TaskDefinition>();
        var seen = new HashSet<(string, ulong)>();
        var present = new HashSet<TaskId>();
        refusals.Clear();
        foreach (var pair in pairs)
        {
            if (!KvLayout.TrySplitTaskKey(pair.Key, layout.TasksPrefix, out var ns, out var name))
            {
                continue; // Deeper keys or the folder itself: not a task.
            }

            string? problem;
            TaskDefinition? definition;
            string? refusal = null;
            var id = new TaskId(ns, name);
            present.Add(id);
            try
            {
                problem = TryRead(pair, ns, name, out definition);
                if (definition is not null && trusted?.Verify(KvTaskSpec.Parse(pair.ValueAsString())) is { } unverified)
                {
                    (problem, refusal, definition) = ("its signature is refused: " + unverified, unverified, null);
                }
            }
#pragma warning disable CA1031 // A spec the validator or the schedule chokes on is one bad task, never the watch's end.
            catch (Exception e) when (e is not OutOfMemoryException)
#pragma warning restore CA1031
            {
                (problem, definition) = ("it cannot be used: " + StateJson.Describe(e), null);
            }

            if (definition is not null)
            {
                tasks[definition.Id] = definition;
                if (trusted is not null)
                {
                    verified[definition.Id] = definition;
                }

                continue;
            }

            var kept = refusal is not null && verified.TryGetValue(id, out var previous) ? previous : null;
            if (kept is not null)
            {
                tasks[id] = kept;
            }

            seen.Add((pair.Key, pair.ModifyIndex));
            if (reported.Add((pair.Key, pair.ModifyIndex)))
            {
                if (refusal is not null)
                {
                    refusals.Add((id, pair.ModifyIndex, refusal, kept?.ModifyIndex));
                    logger.Error("task {Namespace:l}/{Task:l}: the spec at {Key:l} (index {Index}) is refused: {Problem:l}; {Kept:l}",
                        ns, name, pair.Key, pair.ModifyIndex, problem,
                        kept is null ? "the task does not run until a verified spec is written" : $"the verified spec of index {kept.ModifyIndex} keeps running");
                }
                else
                {
                    logger.Error("task {Namespace:l}/{Task:l}: the value at {Key:l} (index {Index}) is ignored: {Problem:l}; every other task keeps running",
                        ns, name, pair.Key, pair.ModifyIndex, problem);
                }
            }
        }

        reported.IntersectWith(seen); // Forget values that were replaced or deleted.
        foreach (var gone in verified.Keys.Where(k => !present.Contains(k)).ToList())
        {
            verified.Remove(gone);
        }

        return tasks;
    }

    private static string? TryRead(Consul.Kv.KvPair pair, string ns, string name, out TaskDefinition? definition)
    {
        definition = null;
        KvTaskSpec envelope;
        try
        {
            envelope = KvTaskSpec.Parse(pair.ValueAsString());
        }
#pragma warning disable CA1031 // Whatever the decoder throws on garbage, the value is unreadable and skipped.
        catch (Exception e) when (e is not OutOfMemoryException)
#pragma warning restore CA1031
        {
            return "it is not a task spec envelope: " + StateJson.Describe(e);
        }

        if (envelope?.Spec is null)
        {
            return "it holds no spec";
        }

        if (envelope.Namespace != ns || envelope.Name != name)
        {
            return $"it names task {envelope.Namespace}/{envelope.Name}, not {ns}/{name}";
        }

        var task = new ScheduledTask { Metadata = new ObjectMeta { Name = name, Namespace = ns }, Spec = envelope.Spec };
        var errors = TaskValidator.Validate(task);
        if (errors.Count > 0)
        {
            return "invalid: " + string.Join("; ", errors);
        }

        try
        {
            var schedule = TaskSchedule.Create(envelope.Spec.ToScheduleSpec($"{ns}/{name}"));
            definition = new TaskDefinition(new TaskId(ns, name), envelope.Spec, schedule, pair.ModifyIndex) { ResumedAt = envelope.ResumedAt };
            return null;
        }
        catch (Exception e) when (e is FormatException or ArgumentException)
        {
            return "its schedule cannot be used: " + e.Message;
        }
    }
}
