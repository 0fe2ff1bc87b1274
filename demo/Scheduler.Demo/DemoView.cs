using System.Globalization;
using Dtask.Core.State;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Dtask.Demo;

/// <summary>What the user watches: the newest finished runs (which node fired each slot, and how it ended) and the runs per node.</summary>
internal sealed class DemoView(IReadOnlyList<string> nodes)
{
    private const int Rows = 16;
    private readonly LinkedList<FinishedRun> recent = new();
    private readonly Dictionary<string, int> perNode = nodes.ToDictionary(n => n, _ => 0, StringComparer.Ordinal);

    /// <summary>Every run shown so far.</summary>
    public List<FinishedRun> All { get; } = [];

    public void Add(FinishedRun run)
    {
        All.Add(run);
        recent.AddFirst(run);
        if (recent.Count > Rows)
        {
            recent.RemoveLast();
        }

        if (run.Record.State is RunState.Succeeded or RunState.Failed or RunState.TimedOut)
        {
            perNode[run.Record.Node] = perNode.GetValueOrDefault(run.Record.Node) + 1;
        }
    }

    /// <summary>The table for an interactive terminal.</summary>
    public IRenderable Render(TimeSpan elapsed, TimeSpan? duration)
    {
        var table = new Table().Border(TableBorder.Rounded).Expand();
        table.Title = new TableTitle($"dtask demo: {nodes.Count} executors, {All.Count} slots handled, {Clock(elapsed)}{(duration is { } d ? " of " + Clock(d) : "; Ctrl-C to stop")}");
        table.AddColumns("SLOT (UTC)", "TASK", "NODE", "RESULT", "DURATION", "OUTPUT");
        foreach (var run in recent)
        {
            table.AddRow(
                Markup.Escape(SlotTime(run.Record.Slot)),
                Markup.Escape(run.Task),
                Markup.Escape(run.Record.Node),
                Result(run.Record),
                Markup.Escape(Duration(run.Record)),
                Markup.Escape(Output(run.Record)));
        }

        table.Caption = new TableTitle(string.Join("   ", perNode.Select(p => $"{p.Key}: {p.Value} runs")));
        return table;
    }

    /// <summary>One plain line per run, for a terminal that is not interactive (a pipe, a CI log).</summary>
    public static string Line(FinishedRun run) =>
        $"{SlotTime(run.Record.Slot)}  {run.Task,-26} {run.Record.Node,-8} {Word(run.Record.State),-10} {Duration(run.Record),8}  {Output(run.Record)}";

    private static string Clock(TimeSpan t) => t.ToString(@"m\:ss", CultureInfo.InvariantCulture);

    private static string SlotTime(long slot) =>
        DateTimeOffset.FromUnixTimeSeconds(slot).ToString("HH:mm:ss", CultureInfo.InvariantCulture);

    private static string Word(RunState state) => StateJson.Serialize(state).Trim('"');

    private static string Result(RunRecord record) => record.State switch
    {
        RunState.Succeeded => "[green]succeeded[/]",
        RunState.Skipped or RunState.Missed => $"[yellow]{Word(record.State)}[/] {Markup.Escape(record.Reason ?? "")}",
        _ => $"[red]{Word(record.State)}[/] {Markup.Escape(record.Reason ?? "")}",
    };

    private static string Duration(RunRecord record) =>
        record is { StartedAt: { } s, FinishedAt: { } f } ? $"{(f - s).TotalMilliseconds:0} ms" : "";

    private static string Output(RunRecord record)
    {
        var tail = (record.OutputTail ?? "").TrimEnd('\n');
        var last = tail.Contains('\n', StringComparison.Ordinal) ? tail[(tail.LastIndexOf('\n') + 1)..] : tail;
        return last.Length > 48 ? last[..47] + "…" : last;
    }
}
