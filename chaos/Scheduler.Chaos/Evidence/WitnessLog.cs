using System.Globalization;

namespace Dtask.Chaos.Evidence;

/// <summary>
/// Reads the witness log the chaos children append to: lines
/// <c>task slot node fence start|end unix-ns run-id pid [stopped]</c>, paired into <see cref="WitnessRun"/>s by run id.
/// </summary>
public static class WitnessLog
{
    /// <summary>The runs in <paramref name="lines"/>, in start order, and the lines that could not be read.</summary>
    public static (IReadOnlyList<WitnessRun> Runs, IReadOnlyList<string> Unreadable) Parse(IEnumerable<string> lines)
    {
        ArgumentNullException.ThrowIfNull(lines);
        var starts = new Dictionary<string, WitnessRun>(StringComparer.Ordinal);
        var ends = new Dictionary<string, (DateTimeOffset At, bool Stopped)>(StringComparer.Ordinal);
        var unreadable = new List<string>();
        foreach (var line in lines)
        {
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }

            var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (f.Length < 8
                || !long.TryParse(f[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out var slot)
                || !long.TryParse(f[3], NumberStyles.Integer, CultureInfo.InvariantCulture, out var fence)
                || !long.TryParse(f[5], NumberStyles.Integer, CultureInfo.InvariantCulture, out var nanos)
                || !int.TryParse(f[7], NumberStyles.Integer, CultureInfo.InvariantCulture, out var pid)
                || f[4] is not ("start" or "end"))
            {
                unreadable.Add(line);
                continue;
            }

            var at = DateTimeOffset.UnixEpoch.AddTicks(nanos / 100);
            var runId = f[6];
            if (f[4] == "start")
            {
                // A retried attempt of the same run writes a second start line: the run starts at the first.
                if (!starts.ContainsKey(runId))
                {
                    starts[runId] = new WitnessRun(f[0], slot, f[2], fence, runId, pid, at, null, false);
                }
            }
            else
            {
                ends[runId] = (at, f.Length > 8 && f[8] == "stopped");
            }
        }

        var runs = starts.Values
            .Select(r => ends.TryGetValue(r.RunId, out var end) ? r with { End = end.At, Stopped = end.Stopped } : r)
            .OrderBy(r => r.Start)
            .ToList();
        return (runs, unreadable);
    }

    /// <summary>Reads the file (empty when it does not exist).</summary>
    public static (IReadOnlyList<WitnessRun> Runs, IReadOnlyList<string> Unreadable) Read(string path) =>
        Parse(File.Exists(path) ? File.ReadAllLines(path) : []);
}
