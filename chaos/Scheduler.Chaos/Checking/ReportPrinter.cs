using System.Globalization;

namespace Dtask.Chaos.Checking;

/// <summary>Prints a <see cref="ChaosReport"/> as plain text.</summary>
public static class ReportPrinter
{
    private const int MaxListed = 30;

    /// <summary>Writes <paramref name="report"/> to <paramref name="output"/>.</summary>
    public static void Print(ChaosReport report, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(report);
        ArgumentNullException.ThrowIfNull(output);
        var inv = CultureInfo.InvariantCulture;
        output.WriteLine();
        output.WriteLine($"window: slots from {report.Window.Start:HH:mm:ss}Z to {report.Window.End:HH:mm:ss}Z ({(report.Window.End - report.Window.Start).TotalSeconds:0} s)");
        output.WriteLine();
        output.WriteLine($"{"task",-12} {"every",5} {"slots",6} {"ran",5} {"once",5} {"skip",5} {"miss",5} {"lost",5} {"aband",5} {"unexpl",6} {"dup",4} {"ovl",4} {"fenced",6}");
        foreach (var t in report.Tasks)
        {
            output.WriteLine($"{t.Task,-12} {t.PeriodSeconds.ToString(inv) + "s",5} {t.Slots,6} {t.Ran,5} {t.RanOnce,5} {t.Skipped,5} {t.Missed,5} {t.Lost,5} {t.Abandoned,5} {t.Unexplained,6} {t.Duplicates,4} {t.Overlaps,4} {t.FencedOverlaps,6}");
        }

        output.WriteLine($"{"total",-12} {"",5} {report.Tasks.Sum(t => t.Slots),6} {report.Tasks.Sum(t => t.Ran),5} {report.Tasks.Sum(t => t.RanOnce),5} {report.Tasks.Sum(t => t.Skipped),5} {report.Tasks.Sum(t => t.Missed),5} {report.Tasks.Sum(t => t.Lost),5} {report.Tasks.Sum(t => t.Abandoned),5} {report.Tasks.Sum(t => t.Unexplained),6} {report.Tasks.Sum(t => t.Duplicates),4} {report.Tasks.Sum(t => t.Overlaps),4} {report.Tasks.Sum(t => t.FencedOverlaps),6}");
        output.WriteLine();
        output.WriteLine($"fire delay (slot time to child start), {report.FireDelayMs.Count} runs: median {report.FireDelayMs.Median:0.0} ms, p99 {report.FireDelayMs.P99:0.0} ms, max {report.FireDelayMs.Max:0.0} ms");
        if (report.Triggers is { } triggers)
        {
            output.WriteLine($"manual triggers: {triggers}");
        }

        if (report.EarlyUnderClockLimit is { Count: > 0 } limited)
        {
            output.WriteLine($"early starts and markers under the skew guard's two-clock limit (fewer than {InvariantChecker.RightClocksNeeded} other executors on right clocks reachable; not violations): {limited.Count}");
            foreach (var line in limited.Take(MaxListed))
            {
                output.WriteLine($"  {line}");
            }
        }

        output.WriteLine();
        output.WriteLine("slots that did not run, by recorded reason:");
        if (report.NotRunReasons.Count == 0)
        {
            output.WriteLine("  none");
        }

        foreach (var (reason, count) in report.NotRunReasons)
        {
            output.WriteLine($"  {count,5}  {reason}");
        }

        output.WriteLine();
        output.WriteLine("failover (executor faults: fault to the next start elsewhere; Consul faults: longest gap in starts):");
        foreach (var f in report.Failovers)
        {
            var what = f.Task is not null ? $"held {f.Task}" : f.Fault is Faults.FaultKind.ExecutorKill or Faults.FaultKind.ExecutorPause ? "any task" : "all tasks";
            var seconds = f.Seconds is { } s ? $"{s:0.000} s" : "never";
            output.WriteLine($"  {f.At:HH:mm:ss}Z {f.Fault,-15} {f.Target,-9} {what,-18} {seconds,9}  {f.TakenBy}");
        }

        output.WriteLine();
        output.WriteLine($"overlaps with a cut-off holder, fenced by a newer token (the lease-lock caveat, not violations): {report.FencedOverlaps.Count}");
        foreach (var o in report.FencedOverlaps.Take(MaxListed))
        {
            output.WriteLine($"  {o.Task}: {o.Earlier} and {o.Later}: {o.Seconds:0.000} s at once; {o.Cause}");
        }

        foreach (var note in report.Notes)
        {
            output.WriteLine($"note: {note}");
        }

        output.WriteLine();
        output.WriteLine($"violations: {report.Violations.Count}");
        foreach (var v in report.Violations.Take(MaxListed))
        {
            output.WriteLine($"  {v.Kind}: {v.Task}{(v.Slot is { } slot ? " slot " + slot.ToString(inv) : "")}: {v.Detail}");
        }

        if (report.Violations.Count > MaxListed)
        {
            output.WriteLine($"  ... and {report.Violations.Count - MaxListed} more (all are in the JSON report)");
        }

        output.WriteLine(report.Passed ? "PASS: every invariant holds" : "FAIL: invariants violated");
    }
}
