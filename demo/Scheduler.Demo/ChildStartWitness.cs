using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;

namespace Dtask.Demo;

/// <summary>
/// What each executor says it started, read from its own JSON log (<c>DTASK_LOG_FORMAT=json</c>): one entry per
/// child process start, with the task, the slot, the node and the fire delay. Independent of the records in Consul,
/// so the demo's duplicate count does not trust the very mechanism it checks.
/// </summary>
internal sealed class ChildStartWitness
{
    private readonly ConcurrentDictionary<(string Task, long Slot), ConcurrentBag<ChildStart>> starts = new();

    /// <summary>Reads one log line of an executor; lines that are not a child start are ignored.</summary>
    public void Observe(string line)
    {
        if (!line.StartsWith('{') || !line.Contains("\"FireDelayMs\"", StringComparison.Ordinal))
        {
            return;
        }

        try
        {
            using var doc = JsonDocument.Parse(line);
            var root = doc.RootElement;
            var task = $"{root.GetProperty("Namespace").GetString()}/{root.GetProperty("Task").GetString()}";
            var slot = root.GetProperty("Slot").GetInt64();
            var start = new ChildStart(
                task,
                slot,
                root.GetProperty("Node").GetString() ?? "?",
                root.GetProperty("RunId").GetString() ?? "?",
                root.GetProperty("FireDelayMs").GetDouble());
            starts.GetOrAdd((task, slot), _ => []).Add(start);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            // Not a child-start entry after all.
        }
    }

    /// <summary>Every child start seen so far.</summary>
    public IReadOnlyList<ChildStart> All => [.. starts.Values.SelectMany(b => b)];

    /// <summary>(task, slot) pairs that more than one run started for: must stay empty.</summary>
    public IReadOnlyList<(string Task, long Slot, IReadOnlyList<ChildStart> Starts)> Duplicates =>
        [.. starts
            .Where(p => p.Value.Select(s => s.RunId).Distinct(StringComparer.Ordinal).Count() > 1)
            .Select(p => (p.Key.Task, p.Key.Slot, (IReadOnlyList<ChildStart>)[.. p.Value]))];
}

/// <summary>One child process start reported by an executor.</summary>
internal sealed record ChildStart(string Task, long Slot, string Node, string RunId, double FireDelayMs)
{
    public override string ToString() =>
        $"{Task} slot {Slot.ToString(CultureInfo.InvariantCulture)} on {Node} (run {RunId})";
}
