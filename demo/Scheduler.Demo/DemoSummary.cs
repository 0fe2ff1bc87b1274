using System.Globalization;
using System.Text;
using Dtask.Core.State;

namespace Dtask.Demo;

/// <summary>The closing report: slots handled per task and per node, fire delays, and the duplicate count from the executors' own logs.</summary>
internal static class DemoSummary
{
    public static string Write(IReadOnlyList<FinishedRun> runs, ChildStartWitness witness, IReadOnlyList<string> nodes, TimeSpan elapsed)
    {
        var sb = new StringBuilder();
        var ran = runs.Where(r => r.Record.State is not (RunState.Skipped or RunState.Missed)).ToList();
        sb.AppendLine(CultureInfo.InvariantCulture, $"dtask demo summary ({elapsed.TotalSeconds:0} s, {nodes.Count} executors)");
        sb.AppendLine(CultureInfo.InvariantCulture, $"  slots fired: {ran.Count}");
        foreach (var group in runs.GroupBy(r => r.Task).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            var states = string.Join(", ", group.GroupBy(r => r.Record.State).OrderBy(s => s.Key)
                .Select(s => $"{s.Count()} {StateJson.Serialize(s.Key).Trim('"')}"));
            var byNode = string.Join(" ", group.Where(r => r.Record.State is not (RunState.Skipped or RunState.Missed))
                .GroupBy(r => r.Record.Node).OrderBy(n => n.Key, StringComparer.Ordinal).Select(n => $"{n.Key}={n.Count()}"));
            sb.AppendLine(CultureInfo.InvariantCulture, $"    {group.Key,-26} {states}   [{byNode}]");
        }

        sb.AppendLine("  per node:");
        foreach (var node in nodes)
        {
            sb.AppendLine(CultureInfo.InvariantCulture, $"    {node}: {ran.Count(r => r.Record.Node == node)} runs");
        }

        var delays = witness.All.Select(s => s.FireDelayMs).Order().ToList();
        if (delays.Count > 0)
        {
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"  fire delay (nominal slot to child start, from the executors' logs): median {Percentile(delays, 0.5):0.0} ms, p99 {Percentile(delays, 0.99):0.0} ms over {delays.Count} starts");
        }

        var duplicates = witness.Duplicates;
        sb.AppendLine(CultureInfo.InvariantCulture, $"  duplicates: {duplicates.Count} (slots started by more than one run, counted from every executor's log)");
        foreach (var (task, slot, starts) in duplicates)
        {
            sb.AppendLine(CultureInfo.InvariantCulture, $"    {task} slot {slot}: {string.Join(", ", starts)}");
        }

        return sb.ToString();
    }

    private static double Percentile(List<double> sorted, double p) =>
        sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Count) - 1, 0, sorted.Count - 1)];
}
