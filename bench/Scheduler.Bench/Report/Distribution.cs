namespace Dtask.Bench.Report;

/// <summary>Order statistics of a sample.</summary>
/// <param name="Count">Sample size.</param>
/// <param name="Median">50th percentile.</param>
/// <param name="P99">99th percentile (nearest rank).</param>
/// <param name="Max">Largest value.</param>
/// <param name="Mean">Arithmetic mean.</param>
internal sealed record Distribution(long Count, double Median, double P99, double Max, double Mean)
{
    /// <summary>The statistics of <paramref name="values"/>; null when there are none.</summary>
    public static Distribution? Of(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        if (sorted.Length == 0)
        {
            return null;
        }

        double Rank(double p) => sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)];
        return new Distribution(sorted.Length, Rank(0.5), Rank(0.99), sorted[^1], sorted.Average());
    }
}
