using System.Globalization;

namespace Dtask.Chaos.Evidence;

/// <summary>
/// Reads the witness logs the chaos children append to, one per host (network namespace), merged: lines
/// <c>task slot node fence start|end unix-ns run-id pid [stopped] [trigger=id] [status=N] [seen=unix-ns] [up=seconds]</c>, paired into <see cref="WitnessRun"/>s by run id and pid (one per child started).
/// </summary>
public static class WitnessLog
{
    /// <summary>The runs in <paramref name="lines"/>, in start order, and the lines that could not be read.</summary>
    public static (IReadOnlyList<WitnessRun> Runs, IReadOnlyList<string> Unreadable) Parse(IEnumerable<string> lines)
    {
        ArgumentNullException.ThrowIfNull(lines);
        // Keyed by run id and pid: a retried attempt of one run (a new child, the same run id) is a start of its own, and
        // so is a second start of one run id anywhere else; identity is never taken from the run id alone.
        var starts = new Dictionary<(string RunId, int Pid), WitnessRun>();
        var ends = new Dictionary<(string RunId, int Pid), (DateTimeOffset At, bool Stopped, int? Status)>();
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
            DateTimeOffset? seen = null;
            string? trigger = null;
            int? status = null;
            foreach (var token in f.Skip(8))
            {
                if (token.StartsWith("seen=", StringComparison.Ordinal)
                    && long.TryParse(token.AsSpan(5), NumberStyles.Integer, CultureInfo.InvariantCulture, out var seenNanos))
                {
                    seen = DateTimeOffset.UnixEpoch.AddTicks(seenNanos / 100);
                }
                else if (token.StartsWith("trigger=", StringComparison.Ordinal) && token.Length > "trigger=".Length)
                {
                    trigger = token["trigger=".Length..];
                }
                else if (token.StartsWith("status=", StringComparison.Ordinal)
                    && int.TryParse(token.AsSpan(7), NumberStyles.Integer, CultureInfo.InvariantCulture, out var code))
                {
                    status = code;
                }
            }

            if (f[4] == "start")
            {
                starts.TryAdd((runId, pid), new WitnessRun(f[0], slot, f[2], fence, runId, pid, at, null, false, seen, Trigger: trigger));
            }
            else
            {
                ends[(runId, pid)] = (at, f.Skip(8).Contains("stopped"), status);
            }
        }

        var runs = starts.Values
            .Select(r => ends.TryGetValue((r.RunId, r.Pid), out var end) ? r with { End = end.At, Stopped = end.Stopped, Status = end.Status } : r)
            .OrderBy(r => r.Start)
            .ToList();
        return (runs, unreadable);
    }

    /// <summary>The start of every witness log's name; the rest is the inode of the host's network namespace and <c>.log</c>.</summary>
    public const string FilePrefix = "witness-net";

    /// <summary>The witness log of the host whose network namespace has inode <paramref name="netInode"/>.</summary>
    public static string FileOf(string folder, long netInode) =>
        Path.Combine(folder, FilePrefix + netInode.ToString(CultureInfo.InvariantCulture) + ".log");

    /// <summary>Reads the file (empty when it does not exist).</summary>
    public static (IReadOnlyList<WitnessRun> Runs, IReadOnlyList<string> Unreadable) Read(string path) =>
        Parse(File.Exists(path) ? File.ReadAllLines(path) : []);

    /// <summary>
    /// Reads and merges every witness log in <paramref name="folder"/>, each run marked with the host whose log holds it
    /// (by <paramref name="hosts"/>, network namespace inode to executor name; <c>net:&lt;inode&gt;</c> for an inode not in it).
    /// </summary>
    public static (IReadOnlyList<WitnessRun> Runs, IReadOnlyList<string> Unreadable) ReadFolder(string folder, IReadOnlyDictionary<long, string> hosts)
    {
        ArgumentNullException.ThrowIfNull(hosts);
        var runs = new List<WitnessRun>();
        var unreadable = new List<string>();
        if (!Directory.Exists(folder))
        {
            return (runs, unreadable);
        }

        foreach (var file in Directory.EnumerateFiles(folder, FilePrefix + "*.log").Order(StringComparer.Ordinal))
        {
            var name = Path.GetFileNameWithoutExtension(file)[FilePrefix.Length..];
            var host = long.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out var inode) && hosts.TryGetValue(inode, out var node)
                ? node
                : "net:" + name;
            var (some, bad) = Read(file);
            runs.AddRange(some.Select(r => r with { Host = host }));
            unreadable.AddRange(bad);
        }

        return ([.. runs.OrderBy(r => r.Start)], unreadable);
    }
}
