using System.Diagnostics.Metrics;

namespace Dtask.Operator.Health;

/// <summary>
/// The operator's instruments, on one <see cref="System.Diagnostics.Metrics.Meter"/> per operator, served at
/// <c>/metrics</c> beside the health endpoints: reconciles by source and result, their duration, invalid manifests, and
/// whether this replica leads. Labels are bounded: <c>source</c> (<c>directory</c>, <c>kubernetes</c>) and <c>result</c>
/// (<c>ok</c>, <c>invalid</c>, <c>error</c>).
/// </summary>
public sealed class OperatorInstruments : IDisposable
{
    /// <summary>The meter's name.</summary>
    public const string MeterName = "dtask.operator";

    /// <summary>Reconciles by source and result.</summary>
    public const string ReconcilesTotal = "dtask_operator_reconciles_total";

    /// <summary>How long reconciles took.</summary>
    public const string ReconcileDurationSeconds = "dtask_operator_reconcile_duration_seconds";

    /// <summary>Manifests the last reconcile found invalid.</summary>
    public const string InvalidManifests = "dtask_operator_invalid_manifests";

    /// <summary>1 while this replica leads.</summary>
    public const string Leader = "dtask_operator_leader";

    private readonly Counter<long> reconciles;
    private readonly Histogram<double> duration;
    private readonly List<(string Source, Func<bool> Leading, Func<int>? Invalid)> sources = [];
    private readonly Lock gate = new();

    /// <summary>Creates the meter and its instruments.</summary>
    public OperatorInstruments()
    {
        Meter = new Meter(MeterName);
        reconciles = Meter.CreateCounter<long>(ReconcilesTotal, description: "Reconciles by source and result (ok, invalid: some manifest was invalid, error).");
        duration = Meter.CreateHistogram(ReconcileDurationSeconds, "s", "How long reconciles took.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] });
        Meter.CreateObservableGauge(Leader, () => Read(s => new Measurement<int>(s.Leading() ? 1 : 0, Tag(s.Source))), description: "1 while this replica leads.");
        Meter.CreateObservableGauge(InvalidManifests, () => Read(s => s.Invalid is { } invalid ? new Measurement<int>(invalid(), Tag(s.Source)) : (Measurement<int>?)null),
            description: "Manifests the last reconcile found invalid.");
    }

    /// <summary>The meter.</summary>
    public Meter Meter { get; }

    /// <summary>Adds a source whose leadership (and invalid manifests, when known) the gauges read.</summary>
    /// <param name="source">Its label: <c>directory</c> or <c>kubernetes</c>.</param>
    /// <param name="leading">Whether it leads now.</param>
    /// <param name="invalid">How many manifests are invalid now; not reported when null.</param>
    public void Observe(string source, Func<bool> leading, Func<int>? invalid = null)
    {
        lock (gate)
        {
            sources.Add((source, leading, invalid));
        }
    }

    /// <summary>Records one reconcile.</summary>
    /// <param name="source">Its source label.</param>
    /// <param name="result"><c>ok</c>, <c>invalid</c> or <c>error</c>.</param>
    /// <param name="elapsed">How long it took.</param>
    public void Reconciled(string source, string result, TimeSpan elapsed)
    {
        reconciles.Add(1, new KeyValuePair<string, object?>("source", source), new KeyValuePair<string, object?>("result", result));
        duration.Record(elapsed.TotalSeconds, new KeyValuePair<string, object?>("source", source));
    }

    /// <inheritdoc />
    public void Dispose() => Meter.Dispose();

    private static KeyValuePair<string, object?> Tag(string source) => new("source", source);

    private IEnumerable<Measurement<int>> Read(Func<(string Source, Func<bool> Leading, Func<int>? Invalid), Measurement<int>?> read)
    {
        lock (gate)
        {
            return [.. sources.Select(read).Where(m => m is not null).Select(m => m!.Value)];
        }
    }
}
