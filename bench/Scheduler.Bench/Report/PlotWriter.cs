using ScottPlot;

namespace Dtask.Bench.Report;

/// <summary>Draws a <see cref="PlotSpec"/> as a PNG with ScottPlot.</summary>
internal static class PlotWriter
{
    private const int Width = 900;
    private const int Height = 520;

    /// <summary>The same colour for a system in every plot: dtask blue, consul-lock orange, cas-check green.</summary>
    private static Color? SystemColor(string name) => name switch
    {
        "dtask" => Color.FromHex("#1f77b4"),
        "consul-lock" => Color.FromHex("#ff7f0e"),
        "cas-check" => Color.FromHex("#2ca02c"),
        _ => null,
    };

    /// <summary>Writes <paramref name="spec"/> into <paramref name="folder"/>; returns the file's path.</summary>
    public static string Write(PlotSpec spec, string folder)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var plot = new Plot();
        foreach (var series in spec.Series.Where(s => s.X.Count > 0))
        {
            var xs = spec.LogX ? series.X.Select(x => Math.Log10(Math.Max(x, 0.1))).ToArray() : series.X.ToArray();
            var scatter = plot.Add.Scatter(xs, series.Y.ToArray());
            scatter.LegendText = series.Name;
            scatter.LineWidth = 2;
            scatter.MarkerSize = series.X.Count <= 10 ? 8 : 0;
            if (SystemColor(series.Name) is { } color)
            {
                scatter.Color = color;
            }
        }

        if (spec.LogX)
        {
            var ticks = new ScottPlot.TickGenerators.NumericAutomatic
            {
                LabelFormatter = value => Math.Pow(10, value).ToString("0.#", System.Globalization.CultureInfo.InvariantCulture),
                MinorTickGenerator = new ScottPlot.TickGenerators.LogMinorTickGenerator(),
                IntegerTicksOnly = true,
            };
            plot.Axes.Bottom.TickGenerator = ticks;
        }

        plot.Title(spec.Title);
        plot.XLabel(spec.XLabel);
        plot.YLabel(spec.YLabel);
        plot.ShowLegend(spec.Series.All(s => s.Y.All(y => y is >= 0 and <= 1)) ? Alignment.LowerRight : Alignment.UpperLeft);
        Directory.CreateDirectory(folder);
        var path = Path.Combine(folder, spec.File);
        plot.SavePng(path, Width, Height);
        return path;
    }
}
