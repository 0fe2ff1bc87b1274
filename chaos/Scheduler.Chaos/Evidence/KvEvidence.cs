using Dtask.Consul;
using Dtask.Consul.Http;
using Dtask.Core.State;

namespace Dtask.Chaos.Evidence;

/// <summary>What the executors recorded in KV for the chaos tasks: every history record and the current run record of each.</summary>
/// <param name="History">Per task name, its finished run records (and skipped/missed markers), by slot.</param>
/// <param name="Current">Per task name, its run record at the time of reading.</param>
/// <param name="Unreadable">Keys whose value was not a run record.</param>
/// <param name="Manual">Per task name, its finished manual runs and dropped triggers (<c>history/manual/</c>), in request order.</param>
/// <param name="PendingTriggers">Per task name, the ids of the trigger requests still waiting in <c>control/</c>.</param>
public sealed record KvEvidence(
    IReadOnlyDictionary<string, IReadOnlyList<RunRecord>> History,
    IReadOnlyDictionary<string, RunRecord> Current,
    IReadOnlyList<string> Unreadable,
    IReadOnlyDictionary<string, IReadOnlyList<RunRecord>>? Manual = null,
    IReadOnlyDictionary<string, IReadOnlyList<string>>? PendingTriggers = null)
{
    /// <summary>The manual records of <paramref name="task"/> (none when there are none).</summary>
    public IReadOnlyList<RunRecord> ManualOf(string task) => Manual?.GetValueOrDefault(task) ?? [];

    /// <summary>The pending trigger ids of <paramref name="task"/>.</summary>
    public IReadOnlyList<string> PendingOf(string task) => PendingTriggers?.GetValueOrDefault(task) ?? [];

    /// <summary>Reads the state of every task of namespace <paramref name="namespace"/> with one consistent recursive read.</summary>
    public static async Task<KvEvidence> ReadAsync(ConsulClient client, KvLayout layout, string @namespace, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(layout);
        var folder = layout.StatePrefix + @namespace + "/";
        var pairs = (await client.Kv.ListAsync(folder, QueryOptions.ConsistentRead, cancellationToken).ConfigureAwait(false)).Value;
        var history = new Dictionary<string, List<RunRecord>>(StringComparer.Ordinal);
        var manual = new Dictionary<string, List<RunRecord>>(StringComparer.Ordinal);
        var current = new Dictionary<string, RunRecord>(StringComparer.Ordinal);
        var unreadable = new List<string>();
        foreach (var pair in pairs)
        {
            var rest = pair.Key[folder.Length..].Split('/');
            if (rest.Length < 2 || rest[1] == "lock")
            {
                continue;
            }

            var record = StateJson.TryDeserialize<RunRecord>(pair.ValueAsString());
            if (record is null)
            {
                unreadable.Add(pair.Key);
                continue;
            }

            if (rest.Length == 2 && rest[1] == "run")
            {
                current[rest[0]] = record;
            }
            else if (rest.Length == 3 && rest[1] == "history")
            {
                Add(history, rest[0], record);
            }
            else if (rest.Length == 4 && rest[1] == "history" && rest[2] == "manual")
            {
                Add(manual, rest[0], record);
            }
        }

        // The trigger requests no executor has run or dropped yet: control/<ns>/<name>/trigger/<id>.
        var controlFolder = layout.ControlPrefix + @namespace + "/";
        var controls = (await client.Kv.ListAsync(controlFolder, QueryOptions.ConsistentRead, cancellationToken).ConfigureAwait(false)).Value;
        var pending = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var pair in controls)
        {
            var rest = pair.Key[controlFolder.Length..].Split('/');
            if (rest.Length == 3 && rest[1] == "trigger")
            {
                Add(pending, rest[0], rest[2]);
            }
        }

        return new KvEvidence(
            history.ToDictionary(h => h.Key, h => (IReadOnlyList<RunRecord>)[.. h.Value.OrderBy(r => r.Slot)], StringComparer.Ordinal),
            current,
            unreadable,
            manual.ToDictionary(h => h.Key, h => (IReadOnlyList<RunRecord>)[.. h.Value.OrderBy(r => r.TriggerIndex)], StringComparer.Ordinal),
            pending.ToDictionary(p => p.Key, p => (IReadOnlyList<string>)p.Value, StringComparer.Ordinal));
    }

    private static void Add<T>(Dictionary<string, List<T>> byTask, string task, T item)
    {
        if (!byTask.TryGetValue(task, out var list))
        {
            byTask[task] = list = [];
        }

        list.Add(item);
    }
}
