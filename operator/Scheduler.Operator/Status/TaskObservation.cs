using Dtask.Consul;
using Dtask.Consul.Kv;
using Dtask.Core.Manifests;
using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Operator.Reconciliation;

namespace Dtask.Operator.Status;

/// <summary>Everything KV says about one task: its envelope, its run records and its lock.</summary>
/// <param name="Namespace">The namespace.</param>
/// <param name="Name">The name.</param>
/// <param name="Stored">The envelope and the index it was read at; null when the task is not in KV.</param>
/// <param name="Current">The current or last run record.</param>
/// <param name="History">Finished run records, oldest first.</param>
/// <param name="LockSession">The session holding the task's lock, or null when free.</param>
public sealed record TaskObservation(string Namespace, string Name, StoredTask? Stored, RunRecord? Current, IReadOnlyList<RunRecord> History, string? LockSession)
{
    /// <summary><c>namespace/name</c>.</summary>
    public string Key => $"{Namespace}/{Name}";

    /// <summary>The stored envelope, when readable.</summary>
    public KvTaskSpec? Envelope => Stored?.Envelope;

    /// <summary>Why the source that owns the task cannot read its declaration now, when it reported so (<see cref="SourceProblem"/>).</summary>
    public SourceProblem? Problem { get; init; }

    /// <summary>An executor's report that it refused a spec of this task (its signature did not verify), if any was written.</summary>
    public SpecRefusal? Refusal { get; init; }

    /// <summary><see cref="Refusal"/> when it concerns the spec stored now; null once a newer spec replaced the refused one.</summary>
    public SpecRefusal? CurrentRefusal => Refusal is { } refusal && Stored is { } stored && refusal.SpecIndex == stored.ModifyIndex ? refusal : null;

    /// <summary>
    /// The status as <see cref="TaskStatusBuilder"/> builds it from these observations; without <paramref name="errors"/>,
    /// the owning source's <see cref="Problem"/> (if its owner still owns the task) counts as the validation errors.
    /// A <see cref="CurrentRefusal"/> adds the condition <c>Verified=False</c> (reason <c>SignatureRefused</c>).
    /// </summary>
    public ScheduledTaskStatus StatusAt(DateTimeOffset now, DesiredSpec? desired = null, IReadOnlyList<Core.Validation.FieldError>? errors = null)
    {
        var status = TaskStatusBuilder.Build(Envelope, errors ?? OwnersProblem?.FieldErrors, Current, History, now, desired);
        return CurrentRefusal is not { } refusal ? status : status with
        {
            Conditions = [.. status.Conditions ?? [], new TaskCondition
            {
                Type = "Verified",
                Status = "False",
                Reason = "SignatureRefused",
                Message = $"executor {refusal.Node} refused this spec: {refusal.Reason}; " +
                    (refusal.KeptIndex is { } kept ? $"executors keep running the verified spec of index {kept}" : "the task does not run"),
            }],
        };
    }

    /// <summary><see cref="Problem"/> when it was reported by the task's owner in KV; otherwise null.</summary>
    public SourceProblem? OwnersProblem => Problem is { } problem && Envelope is { } envelope && envelope.Owner.ToString() == problem.Owner ? problem : null;
}

/// <summary>Reads <see cref="TaskObservation"/>s from KV: one task, or every task at once (two reads).</summary>
public sealed class TaskObservationReader(ConsulClient client, KvLayout layout)
{
    /// <summary>Reads one task; <see cref="TaskObservation.Stored"/> is null when it is not in KV.</summary>
    public async Task<TaskObservation> ReadAsync(string @namespace, string name, CancellationToken cancellationToken = default)
    {
        var spec = await client.Kv.GetAsync(layout.TaskKey(@namespace, name), cancellationToken: cancellationToken).ConfigureAwait(false);
        var state = await client.Kv.ListAsync(layout.TaskStatePrefix(@namespace, name), cancellationToken: cancellationToken).ConfigureAwait(false);
        var problem = await client.Kv.GetAsync(SourceProblem.KeyFor(layout, @namespace, name), cancellationToken: cancellationToken).ConfigureAwait(false);
        var stored = spec.Value is { } pair ? StoredTask.From(pair, layout) : null;
        return Observe(@namespace, name, stored, state.Value) with
        {
            Problem = problem.Value is { } found ? SourceProblem.TryParse(found.ValueAsString()) : null,
        };
    }

    /// <summary>Reads every task in KV (and any task that has run state but no spec any more), by <c>ns/name</c>.</summary>
    public async Task<IReadOnlyList<TaskObservation>> ReadAllAsync(CancellationToken cancellationToken = default)
    {
        var specs = await client.Kv.ListAsync(layout.TasksPrefix, cancellationToken: cancellationToken).ConfigureAwait(false);
        var states = await client.Kv.ListAsync(layout.StatePrefix, cancellationToken: cancellationToken).ConfigureAwait(false);
        var problems = await client.Kv.ListAsync(SourceProblem.Prefix(layout), cancellationToken: cancellationToken).ConfigureAwait(false);
        return Observe(specs.Value, states.Value, problems.Value);
    }

    /// <summary>
    /// Every task in <paramref name="specs"/> (pairs under <c>tasks/</c>) with its run state (pairs under <c>state/</c>)
    /// and its source's problem (pairs under the problems prefix), by <c>ns/name</c>: what <see cref="ReadAllAsync"/>
    /// returns, from pairs read once (e.g. one watched listing of the whole prefix). Pairs of other folders are ignored.
    /// </summary>
    public IReadOnlyList<TaskObservation> Observe(IEnumerable<KvPair> specs, IEnumerable<KvPair> states, IEnumerable<KvPair> problemPairs)
    {
        ArgumentNullException.ThrowIfNull(specs);
        ArgumentNullException.ThrowIfNull(states);
        ArgumentNullException.ThrowIfNull(problemPairs);
        var problemsPrefix = SourceProblem.Prefix(layout);
        var problems = problemPairs.Where(p => p.Key.StartsWith(problemsPrefix, StringComparison.Ordinal))
            .Select(p => (Key: p.Key[problemsPrefix.Length..], Problem: SourceProblem.TryParse(p.ValueAsString())))
            .Where(p => p.Problem is not null)
            .GroupBy(p => p.Key, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.First().Problem, StringComparer.Ordinal);
        var stored = specs.Where(p => p.Key.StartsWith(layout.TasksPrefix, StringComparison.Ordinal))
            .Select(p => StoredTask.From(p, layout)).OfType<StoredTask>().ToDictionary(s => s.Key, StringComparer.Ordinal);
        var byTask = states
            .Select(p => (Pair: p, Task: TaskOfStateKey(p.Key)))
            .Where(x => x.Task is not null)
            .GroupBy(x => x.Task!.Value, x => x.Pair)
            .ToDictionary(g => $"{g.Key.Namespace}/{g.Key.Name}", g => g.ToList(), StringComparer.Ordinal);

        return [.. stored.Values
            .Select(s => Observe(s.Namespace, s.Name, s, byTask.GetValueOrDefault(s.Key) ?? []) with { Problem = problems.GetValueOrDefault(s.Key) })
            .OrderBy(o => o.Namespace, StringComparer.Ordinal)
            .ThenBy(o => o.Name, StringComparer.Ordinal)];
    }

    /// <summary>The task a key under <c>state/</c> belongs to, or null.</summary>
    public (string Namespace, string Name)? TaskOfStateKey(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (!key.StartsWith(layout.StatePrefix, StringComparison.Ordinal))
        {
            return null;
        }

        var parts = key[layout.StatePrefix.Length..].Split('/');
        return parts.Length >= 3 && parts[0].Length > 0 && parts[1].Length > 0 ? (parts[0], parts[1]) : null;
    }

    private TaskObservation Observe(string @namespace, string name, StoredTask? stored, IReadOnlyList<KvPair> state)
    {
        RunRecord? current = null;
        string? lockSession = null;
        var history = new List<RunRecord>();
        var historyPrefix = layout.HistoryPrefix(@namespace, name);
        foreach (var pair in state)
        {
            if (pair.Key == layout.RunKey(@namespace, name))
            {
                current = StateJson.TryDeserialize<RunRecord>(pair.ValueAsString());
            }
            else if (pair.Key == layout.LockKey(@namespace, name))
            {
                lockSession = pair.Session;
            }
            else if (pair.Key.StartsWith(historyPrefix, StringComparison.Ordinal) && StateJson.TryDeserialize<RunRecord>(pair.ValueAsString()) is { } record)
            {
                history.Add(record);
            }
        }

        history.Sort((a, b) => a.OrderKey.CompareTo(b.OrderKey));
        var refusal = state.FirstOrDefault(p => p.Key == layout.SpecRefusalKey(@namespace, name)) is { } refused
            ? StateJson.TryDeserialize<SpecRefusal>(refused.ValueAsString())
            : null;
        return new TaskObservation(@namespace, name, stored, current, history, lockSession) { Refusal = refusal };
    }
}
