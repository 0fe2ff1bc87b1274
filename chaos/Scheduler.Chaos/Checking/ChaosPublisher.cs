using System.Diagnostics;
using System.Globalization;
using System.Text;
using Dtask.Chaos.Evidence;
using Dtask.Chaos.Faults;
using ScottPlot;

namespace Dtask.Chaos.Checking;

/// <summary>
/// Publishes a chaos run: the section of <c>docs/BENCHMARKS.md</c> between its chaos markers (tables per fault kind, per
/// invariant and per task, written from the result: no figure by hand) and the timeline picture (slots × nodes, faults
/// shaded) beside the JSON report.
/// </summary>
public static class ChaosPublisher
{
    /// <summary>The line before the generated section.</summary>
    public const string Begin = "<!-- chaos-figures:begin (written by make chaos; do not edit by hand) -->";

    /// <summary>The line after it.</summary>
    public const string End = "<!-- chaos-figures:end -->";

    /// <summary>The commit the run ran at (<c>git rev-parse HEAD</c>, with <c>-dirty</c> when the work tree had changes), or <c>unknown</c>.</summary>
    public static string Commit(string? repository)
    {
        if (repository is null)
        {
            return "unknown";
        }

        try
        {
            var head = Git(repository, "rev-parse", "HEAD").Trim();
            var dirty = Git(repository, "status", "--porcelain", "--untracked-files=no").Trim().Length > 0;
            return head.Length == 0 ? "unknown" : head + (dirty ? "-dirty" : "");
        }
        catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception or IOException)
        {
            return "unknown";
        }
    }

    /// <summary>The line before the generated section of the defect run (<c>make chaos-defect</c>).</summary>
    public const string DefectBegin = "<!-- chaos-defect:begin (written by make chaos-defect; do not edit by hand) -->";

    /// <summary>The line after it.</summary>
    public const string DefectEnd = "<!-- chaos-defect:end -->";

    /// <summary>Replaces the generated section of <paramref name="markdownFile"/> (appending it when the markers are missing).</summary>
    public static void WriteMarkdown(ChaosResult result, string markdownFile, string jsonName, string pictureName)
    {
        ArgumentNullException.ThrowIfNull(result);
        Replace(markdownFile, Begin, End, Markdown(result, jsonName, pictureName));
    }

    /// <summary>Replaces the defect run's section of <paramref name="markdownFile"/>: which checks caught the defect build <paramref name="defect"/>.</summary>
    public static void WriteDefectMarkdown(ChaosResult result, string defect, string markdownFile, string jsonName)
    {
        ArgumentNullException.ThrowIfNull(result);
        var inv = CultureInfo.InvariantCulture;
        var report = result.Report;
        var md = new StringBuilder();
        md.AppendLine(DefectBegin);
        var verdict = result.Passed ? "**the checker did not catch it (0 violations).**" : string.Create(inv, $"**caught: {report.Violations.Count} violation(s).**");
        md.AppendLine(inv, $"A run of `make chaos-defect CHAOS_DEFECT_DURATION={result.DurationSeconds:0} CHAOS_SEED={result.Seed}` at commit `{result.Commit}`, {result.StartedAt:yyyy-MM-dd HH:mm} UTC, executors built with the defect `{defect}` put back: {verdict} Full numbers in `{jsonName}`.");
        md.AppendLine();
        md.AppendLine("| invariant | violations | by kind |");
        md.AppendLine("|---|---|---|");
        foreach (var (invariant, count) in report.InvariantViolations)
        {
            var kinds = report.Violations.Where(v => v.Invariant == invariant).GroupBy(v => v.Kind, StringComparer.Ordinal).Select(g => string.Create(inv, $"{g.Key} {g.Count()}"));
            md.AppendLine(inv, $"| {invariant} | {count} | {string.Join(", ", kinds)} |");
        }

        md.AppendLine();
        foreach (var v in report.Violations.GroupBy(v => v.Kind, StringComparer.Ordinal).SelectMany(g => g.Take(2)))
        {
            md.AppendLine(inv, $"- {v.Invariant} / {v.Kind}: `{v.Task}`{(v.Slot is { } s ? " slot " + s.ToString(inv) : "")}: {v.Detail}");
        }

        md.Append(DefectEnd);
        Replace(markdownFile, DefectBegin, DefectEnd, md.ToString());
    }

    private static void Replace(string markdownFile, string beginMarker, string endMarker, string section)
    {
        var text = File.Exists(markdownFile) ? File.ReadAllText(markdownFile) : "";
        var begin = text.IndexOf(beginMarker, StringComparison.Ordinal);
        var end = text.IndexOf(endMarker, StringComparison.Ordinal);
        text = begin >= 0 && end > begin
            ? text[..begin] + section + text[(end + endMarker.Length)..]
            : text.TrimEnd() + "\n\n" + section + "\n";
        File.WriteAllText(markdownFile, text);
    }

    /// <summary>The generated section, markers included.</summary>
    public static string Markdown(ChaosResult result, string jsonName, string pictureName)
    {
        ArgumentNullException.ThrowIfNull(result);
        var inv = CultureInfo.InvariantCulture;
        var report = result.Report;
        var md = new StringBuilder();
        md.AppendLine(Begin);
        var verdict = result.Passed ? "**PASS: 0 violations.**" : string.Create(inv, $"**FAIL: {report.Violations.Count} violation(s).**");
        md.AppendLine(inv, $"A run of `make chaos CHAOS_DURATION={result.DurationSeconds:0} CHAOS_SEED={result.Seed}` at commit `{result.Commit}`, {result.StartedAt:yyyy-MM-dd HH:mm} UTC, {result.WallSeconds:0.0} s wall time; {result.Servers} Consul servers, {result.Executors} executors (session TTL {result.SessionTtlSeconds:0} s); {result.Machine.Cores} cores, {result.Machine.Os}, {result.Machine.Runtime}, {result.Machine.Consul}. Full numbers in `{jsonName}`. {verdict}");
        md.AppendLine();
        md.AppendLine("Violations per invariant:");
        md.AppendLine();
        md.AppendLine("| invariant | violations |");
        md.AppendLine("|---|---|");
        foreach (var (invariant, count) in report.InvariantViolations)
        {
            md.AppendLine(inv, $"| {invariant} | {count} |");
        }

        md.AppendLine();
        md.AppendLine("Per fault kind (a slot is due under a fault from the fault's start to two session TTLs after its end; a slot under two faults counts for both; `none`: slots no fault covers):");
        md.AppendLine();
        md.AppendLine("| fault | injected | slots due | run | skipped | missed | " + string.Join(" | ", Invariants.All.Select(i => i[..1])) + " |");
        md.AppendLine("|---|---|---|---|---|---|" + string.Concat(Invariants.All.Select(_ => "---|")));
        foreach (var row in report.ByFault)
        {
            var cells = string.Join(" | ", Invariants.All.Select(i => row.Violations.GetValueOrDefault(i).ToString(inv)));
            md.AppendLine(inv, $"| {row.Fault} | {row.Injected} | {row.SlotsDue} | {row.Ran} | {row.Skipped} | {row.Missed} | {cells} |");
        }

        md.AppendLine();
        md.AppendLine("(columns a–g: violations of the invariants above.)");
        md.AppendLine();
        md.AppendLine("| task | every | slots | ran | ran once | skipped | missed | lost | abandoned | unexplained | duplicates | overlaps | fenced overlaps |");
        md.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (var t in report.Tasks)
        {
            md.AppendLine(inv, $"| `{t.Task}` | {t.PeriodSeconds} s | {t.Slots} | {t.Ran} | {t.RanOnce} | {t.Skipped} | {t.Missed} | {t.Lost} | {t.Abandoned} | {t.Unexplained} | {t.Duplicates} | {t.Overlaps} | {t.FencedOverlaps} |");
        }

        md.AppendLine();
        md.AppendLine(inv, $"Fire delay (slot instant to the child's start, true clock), {report.FireDelayMs.Count} runs: median {report.FireDelayMs.Median:0.0} ms, p99 {report.FireDelayMs.P99:0.0} ms, max {report.FireDelayMs.Max:0.0} ms. Fenced overlaps (the lease-lock caveat, not violations): {report.FencedOverlaps.Count}.");
        if (report.Triggers is { } triggers)
        {
            md.AppendLine();
            md.AppendLine(inv, $"Manual trigger stream (`dtask trigger` requests every 3–9 s on the tasks marked for it): {triggers}.");
        }

        md.AppendLine();
        md.AppendLine(inv, $"Early starts and markers under the skew guard's two-clock limit (the node's agent shares its clock, and fewer than {InvariantChecker.RightClocksNeeded} other executors on right clocks were reachable; see docs/architecture.md, \"Clock skew\"; not counted as violations): {report.EarlyUnderClockLimit?.Count ?? 0}.");
        md.AppendLine();
        md.AppendLine("The faults as they happened:");
        md.AppendLine();
        md.AppendLine("| at (s) | fault | target | held (s) | detail |");
        md.AppendLine("|---|---|---|---|---|");
        foreach (var f in report.Faults)
        {
            md.AppendLine(inv, $"| {(f.Start - result.PhaseStart).TotalSeconds:0.0} | {f.Kind} | {f.Target} | {((f.End ?? f.Start) - f.Start).TotalSeconds:0.0} | {f.Detail.Replace("|", "/", StringComparison.Ordinal)} |");
        }

        if (report.Violations.Count > 0)
        {
            md.AppendLine();
            md.AppendLine("Violations (first 30):");
            md.AppendLine();
            foreach (var v in report.Violations.Take(30))
            {
                md.AppendLine(inv, $"- {v.Invariant} / {v.Kind}: `{v.Task}`{(v.Slot is { } s ? " slot " + s.ToString(inv) : "")}: {v.Detail}");
            }
        }

        if (report.Notes.Count > 0)
        {
            md.AppendLine();
            foreach (var note in report.Notes)
            {
                md.AppendLine("- note: " + note);
            }
        }

        md.AppendLine();
        md.AppendLine(inv, $"![chaos timeline: witnessed starts per node, faults shaded]({pictureName})");
        md.Append(End);
        return md.ToString();
    }

    /// <summary>Draws the timeline: one row per executor, a dot per witnessed start at its slot's time, faults shaded (on the victim's row, or across all rows for Consul faults).</summary>
    public static void WriteTimeline(ChaosResult result, IReadOnlyList<WitnessRun> runs, IReadOnlyList<string> nodes, string pngFile)
    {
        ArgumentNullException.ThrowIfNull(result);
        ArgumentNullException.ThrowIfNull(runs);
        ArgumentNullException.ThrowIfNull(nodes);
        var plot = new Plot();
        var origin = result.PhaseStart;
        double X(DateTimeOffset at) => (at - origin).TotalSeconds;
        var row = nodes.Select((n, i) => (n, i)).ToDictionary(p => p.n, p => (double)(p.i + 1), StringComparer.Ordinal);
        var faultColors = new Dictionary<FaultKind, Color>();
        var palette = new ScottPlot.Palettes.Category10();
        var legendDone = new HashSet<FaultKind>();
        foreach (var fault in result.Report.Faults.Where(f => f.Kind != FaultKind.ClockOffset))
        {
            if (!faultColors.TryGetValue(fault.Kind, out var color))
            {
                faultColors[fault.Kind] = color = palette.GetColor(faultColors.Count).WithAlpha(0.25);
            }

            var start = X(fault.Start);
            var end = Math.Max(X(fault.End ?? fault.Start), start + 0.6);
            var (bottom, top) = row.TryGetValue(fault.Target, out var y) ? (y - 0.45, y + 0.45) : (0.5, nodes.Count + 0.5);
            var shade = plot.Add.Rectangle(start, end, bottom, top);
            shade.FillStyle.Color = color;
            shade.LineStyle.Width = 0;
            if (legendDone.Add(fault.Kind))
            {
                shade.LegendText = fault.Kind.ToString();
            }
        }

        foreach (var offset in result.Report.Faults.Where(f => f.Kind == FaultKind.ClockOffset && row.ContainsKey(f.Target)))
        {
            var label = plot.Add.Text($"clock {offset.ClockOffsetSeconds:+0;-0} s", X(offset.Start), row[offset.Target] + 0.3);
            label.LabelFontSize = 10;
        }

        var tasks = runs.Select(r => r.Task).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        var taskPalette = new ScottPlot.Palettes.Tsitsulin();
        for (var i = 0; i < tasks.Count; i++)
        {
            var mine = runs.Where(r => r.Task == tasks[i] && row.ContainsKey(r.Node)).ToList();
            if (mine.Count == 0)
            {
                continue;
            }

            var spread = (i - ((tasks.Count - 1) / 2.0)) * 0.1;
            var markers = plot.Add.Markers(mine.Select(r => X(r.SlotTime)).ToArray(), mine.Select(r => row[r.Node] + spread).ToArray());
            markers.MarkerSize = 4;
            markers.Color = taskPalette.GetColor(i);
            markers.LegendText = tasks[i];
        }

        plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
            [.. nodes.Select((n, i) => new Tick(i + 1, n))]);
        plot.Axes.SetLimitsY(0.4, nodes.Count + 0.6);
        plot.Title($"chaos run at {result.Commit[..Math.Min(12, result.Commit.Length)]}, seed {result.Seed}: witnessed starts by slot and node, faults shaded");
        plot.XLabel("slot time (s from the start of the fault phase)");
        plot.ShowLegend(Alignment.UpperRight);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(pngFile))!);
        plot.SavePng(pngFile, 1400, 520);
    }

    private static string Git(string repository, params string[] arguments)
    {
        var start = new ProcessStartInfo("git") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = repository };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException("git did not start");
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return process.ExitCode == 0 ? output : throw new InvalidOperationException($"git {string.Join(' ', arguments)} failed");
    }
}
