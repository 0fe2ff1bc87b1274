using System.Globalization;

namespace Dtask.Bench.Workload;

/// <summary>One line a witness command wrote: which run of which slot started where, and when by its own clock.</summary>
/// <param name="Task">The task name (<c>DTASK_TASK</c>).</param>
/// <param name="Slot">The slot (<c>DTASK_SLOT</c>, Unix seconds).</param>
/// <param name="Node">The node that ran it (<c>DTASK_NODE</c>).</param>
/// <param name="StartedAt">The shell's <c>$EPOCHREALTIME</c> when it ran (Unix seconds, microsecond resolution).</param>
internal sealed record WitnessLine(string Task, long Slot, string Node, double StartedAt)
{
    /// <summary>From the slot's nominal instant to the child's own clock reading, in milliseconds.</summary>
    public double LatencyMs => (StartedAt - Slot) * 1000;
}

/// <summary>
/// The independent witness of fires: each run appends one line to a file from inside the child process, with bash's
/// <c>$EPOCHREALTIME</c> (a shell variable, so no extra fork of <c>date</c>). Its cost, the start of bash itself, is
/// measured apart (see <c>LatencyScenario.WitnessOverheadAsync</c>).
/// </summary>
internal sealed class Witness : IDisposable
{
    private readonly DirectoryInfo folder = Directory.CreateTempSubdirectory("dtask-bench-witness-");

    public Witness()
    {
        FilePath = Path.Combine(folder.FullName, "fires.log");
        File.WriteAllText(FilePath, "");
    }

    /// <summary>The file the lines go to.</summary>
    public string FilePath { get; }

    /// <summary>The witness command: <c>/bin/bash -c 'echo "$DTASK_TASK $DTASK_SLOT $DTASK_NODE $EPOCHREALTIME" &gt;&gt; FILE'</c>.</summary>
    public IReadOnlyList<string> Command => ["/bin/bash", "-c", $"echo \"$DTASK_TASK $DTASK_SLOT $DTASK_NODE $EPOCHREALTIME\" >> '{FilePath}'"];

    /// <summary>Every line written so far.</summary>
    public IReadOnlyList<WitnessLine> Read()
    {
        var lines = new List<WitnessLine>();
        foreach (var text in File.ReadAllLines(FilePath))
        {
            var parts = text.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length == 4
                && long.TryParse(parts[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out var slot)
                && double.TryParse(parts[3].Replace(',', '.'), NumberStyles.Float, CultureInfo.InvariantCulture, out var at))
            {
                lines.Add(new WitnessLine(parts[0], slot, parts[2], at));
            }
        }

        return lines;
    }

    /// <summary>Empties the file.</summary>
    public void Clear() => File.WriteAllText(FilePath, "");

    /// <inheritdoc />
    public void Dispose()
    {
        try
        {
            folder.Delete(recursive: true);
        }
        catch (IOException)
        {
            // Harmless.
        }
    }
}

/// <summary>What the witness lines say about one window of slots.</summary>
/// <param name="Expected">Task × slot pairs due in the window.</param>
/// <param name="Fired">Pairs that ran at least once.</param>
/// <param name="Runs">Runs in total.</param>
/// <param name="Duplicates">Runs beyond the first of a pair (the same slot run more than once).</param>
/// <param name="SlotsWithDuplicates">Pairs that ran more than once.</param>
/// <param name="Missed">Pairs that never ran.</param>
/// <param name="LatenciesMs">Slot → first run's start, for every pair that ran.</param>
internal sealed record FireTally(long Expected, long Fired, long Runs, long Duplicates, long SlotsWithDuplicates, long Missed, IReadOnlyList<double> LatenciesMs)
{
    /// <summary>Tallies <paramref name="lines"/> for slots in [<paramref name="firstSlot"/>, <paramref name="lastSlot"/>] of <paramref name="tasks"/>, every <paramref name="period"/> seconds.</summary>
    public static FireTally Of(IEnumerable<WitnessLine> lines, IReadOnlyCollection<string> tasks, long firstSlot, long lastSlot, long period = 1)
    {
        ArgumentNullException.ThrowIfNull(tasks);
        var inWindow = lines.Where(l => l.Slot >= firstSlot && l.Slot <= lastSlot && tasks.Contains(l.Task)).ToList();
        var bySlot = inWindow.GroupBy(l => (l.Task, l.Slot)).ToList();
        var expected = tasks.Count * ((lastSlot - firstSlot) / period + 1);
        return new FireTally(
            expected,
            bySlot.Count,
            inWindow.Count,
            inWindow.Count - bySlot.Count,
            bySlot.Count(g => g.Count() > 1),
            expected - bySlot.Count,
            [.. bySlot.Select(g => g.Min(l => l.LatencyMs))]);
    }
}
