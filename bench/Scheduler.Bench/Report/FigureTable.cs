using System.Globalization;

namespace Dtask.Bench.Report;

/// <summary>One row of the report's table: a figure and, for a baseline, its ratio to dtask's same figure.</summary>
/// <param name="Figure">The figure.</param>
/// <param name="Ratio">Baseline ÷ dtask (median, else value), or null.</param>
internal sealed record FigureRow(Figure Figure, double? Ratio);

/// <summary>Turns figures into rows: grouped by scenario and metric, dtask first, baselines with their ratio to dtask.</summary>
internal static class FigureTable
{
    /// <summary>The rows of <paramref name="results"/>.</summary>
    public static IReadOnlyList<FigureRow> Rows(IEnumerable<ScenarioResult> results)
    {
        var rows = new List<FigureRow>();
        foreach (var result in results)
        {
            foreach (var group in result.Figures.GroupBy(f => f.Metric))
            {
                var ordered = group.OrderBy(f => f.System == "dtask" ? 0 : 1).ToList();
                foreach (var figure in ordered)
                {
                    double? ratio = null;
                    if (figure.System is "consul-lock" or "cas-check" or "posix-spawn" or "process-start" or "setsid-exec")
                    {
                        var same = ordered.FirstOrDefault(f => f.System == "dtask" && (figure.Scenario == "spawn" ? f.Setup == figure.Setup && f.Unit == "ms" : NodeCount(f.Setup) == NodeCount(figure.Setup)));
                        var mine = figure.Median ?? figure.Value;
                        var theirs = same?.Median ?? same?.Value;
                        if (mine is { } m && theirs is { } t && t > 0)
                        {
                            ratio = m / t;
                        }
                    }

                    rows.Add(new FigureRow(figure, ratio));
                }
            }
        }

        return rows;
    }

    /// <summary>A number as shown in tables: 3 significant figures, or a dash.</summary>
    public static string Show(double? value)
    {
        if (value is not { } v || double.IsNaN(v))
        {
            return "–";
        }

        var abs = Math.Abs(v);
        return abs == 0 ? "0"
            : abs >= 100 ? v.ToString("0", CultureInfo.InvariantCulture)
            : abs >= 10 ? v.ToString("0.0", CultureInfo.InvariantCulture)
            : abs >= 1 ? v.ToString("0.00", CultureInfo.InvariantCulture)
            : v.ToString("0.000", CultureInfo.InvariantCulture);
    }

    /// <summary>A ratio as shown: <c>×12.3</c>.</summary>
    public static string ShowRatio(double? ratio) => ratio is { } r ? "×" + Show(r) : "";

    private static string NodeCount(string setup) => setup.Split(' ', 2)[0];
}
