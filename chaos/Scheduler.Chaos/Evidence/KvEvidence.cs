using Dtask.Consul;
using Dtask.Consul.Http;
using Dtask.Core.State;

namespace Dtask.Chaos.Evidence;

/// <summary>What the executors recorded in KV for the chaos tasks: every history record and the current run record of each.</summary>
/// <param name="History">Per task name, its finished run records (and skipped/missed markers), by slot.</param>
/// <param name="Current">Per task name, its run record at the time of reading.</param>
/// <param name="Unreadable">Keys whose value was not a run record.</param>
public sealed record KvEvidence(
    IReadOnlyDictionary<string, IReadOnlyList<RunRecord>> History,
    IReadOnlyDictionary<string, RunRecord> Current,
    IReadOnlyList<string> Unreadable)
{
    /// <summary>Reads the state of every task of namespace <paramref name="namespace"/> with one consistent recursive read.</summary>
    public static async Task<KvEvidence> ReadAsync(ConsulClient client, KvLayout layout, string @namespace, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(layout);
        var folder = layout.StatePrefix + @namespace + "/";
        var pairs = (await client.Kv.ListAsync(folder, QueryOptions.ConsistentRead, cancellationToken).ConfigureAwait(false)).Value;
        var history = new Dictionary<string, List<RunRecord>>(StringComparer.Ordinal);
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
                if (!history.TryGetValue(rest[0], out var list))
                {
                    history[rest[0]] = list = [];
                }

                list.Add(record);
            }
        }

        return new KvEvidence(
            history.ToDictionary(h => h.Key, h => (IReadOnlyList<RunRecord>)[.. h.Value.OrderBy(r => r.Slot)], StringComparer.Ordinal),
            current,
            unreadable);
    }
}
