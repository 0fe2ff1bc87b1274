using Spectre.Console;

namespace Dtask.Bench.Report;

/// <summary>Prints the figures and goals as tables on the terminal.</summary>
internal static class ConsoleReport
{
    /// <summary>Prints <paramref name="report"/>.</summary>
    public static void Print(BenchReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        if (Console.IsOutputRedirected || AnsiConsole.Profile.Width < 160)
        {
            AnsiConsole.Profile.Width = 200;
        }

        if (Console.IsOutputRedirected)
        {
            AnsiConsole.Profile.Capabilities.Ansi = false;
        }

        var table = new Table().Border(TableBorder.Rounded).Title("dtask benchmarks");
        foreach (var column in new[] { "scenario", "metric", "system", "setup", "median", "p99", "value", "unit", "vs dtask" })
        {
            table.AddColumn(column);
        }

        foreach (var row in FigureTable.Rows(report.Results))
        {
            var f = row.Figure;
            table.AddRow(Markup.Escape(f.Scenario), Markup.Escape(f.Metric), Markup.Escape(f.System), Markup.Escape(f.Setup),
                FigureTable.Show(f.Median), FigureTable.Show(f.P99), FigureTable.Show(f.Value), Markup.Escape(f.Unit), FigureTable.ShowRatio(row.Ratio));
        }

        AnsiConsole.Write(table);
        var goals = new Table().Border(TableBorder.Rounded).Title("goals");
        goals.AddColumn("goal");
        goals.AddColumn("measured");
        goals.AddColumn("met");
        foreach (var goal in report.Results.SelectMany(r => r.Goals))
        {
            goals.AddRow(Markup.Escape(goal.Goal), Markup.Escape(goal.Measured + (goal.Limit is null ? "" : " — " + goal.Limit)), goal.Met ? "[green]yes[/]" : "[red]no[/]");
        }

        AnsiConsole.Write(goals);
    }
}
