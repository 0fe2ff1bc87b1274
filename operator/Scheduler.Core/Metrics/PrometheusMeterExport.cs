using System.Diagnostics.Metrics;
using System.Globalization;
using Prometheus;

namespace Dtask.Core.Metrics;

/// <summary>
/// Publishes the instruments of one <see cref="Meter"/> in a prometheus-net <see cref="CollectorRegistry"/> of its own
/// (no process-wide registry, so several daemons in one process do not mix): each instrument becomes the Prometheus
/// metric of the same name, its tags the labels (sorted by name). A <see cref="Counter{T}"/> or
/// <see cref="ObservableCounter{T}"/> becomes a counter, a <see cref="Histogram{T}"/> a histogram with the buckets of
/// its advice, an <see cref="ObservableGauge{T}"/> or <see cref="ObservableUpDownCounter{T}"/> a gauge. Observable
/// instruments are read when the registry is collected; a label set an observable instrument no longer reports is
/// removed from the output (e.g. a deleted task).
/// </summary>
public sealed class PrometheusMeterExport : IDisposable
{
    private static readonly double[] DefaultBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
    private readonly Meter meter;
    private readonly Func<Instrument, string, bool> keepLabel;
    private readonly MetricFactory factory;
    private readonly MeterListener listener = new();
    private readonly Lock gate = new();
    private readonly Dictionary<Instrument, Exported> exported = [];
    private volatile bool disposed;

    /// <summary>Starts exporting the instruments of <paramref name="meter"/>, those created already and those to come.</summary>
    /// <param name="meter">The meter.</param>
    /// <param name="keepLabel">Whether a tag of an instrument becomes a label (e.g. a histogram drops its per-task tags); every tag when null.</param>
    public PrometheusMeterExport(Meter meter, Func<Instrument, string, bool>? keepLabel = null)
    {
        ArgumentNullException.ThrowIfNull(meter);
        this.meter = meter;
        this.keepLabel = keepLabel ?? ((_, _) => true);
        Registry = Prometheus.Metrics.NewCustomRegistry();
        factory = Prometheus.Metrics.WithCustomRegistry(Registry);
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (ReferenceEquals(instrument.Meter, this.meter))
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((i, value, tags, _) => Record(i, value, tags));
        listener.SetMeasurementEventCallback<int>((i, value, tags, _) => Record(i, value, tags));
        listener.SetMeasurementEventCallback<double>((i, value, tags, _) => Record(i, value, tags));
        listener.Start();
        Registry.AddBeforeCollectCallback(CollectObservables);
    }

    /// <summary>The registry holding the exported metrics (serve it with a <see cref="MetricServer"/> or <see cref="WriteAsync"/>).</summary>
    public CollectorRegistry Registry { get; }

    /// <summary>The content type of <see cref="WriteAsync"/>'s output.</summary>
    public static string ContentType => "text/plain; version=0.0.4; charset=utf-8";

    /// <summary>Writes every metric in the Prometheus text format.</summary>
    /// <param name="stream">Where to.</param>
    /// <param name="cancellationToken">Stops the write.</param>
    /// <returns>Completes once written.</returns>
    public Task WriteAsync(Stream stream, CancellationToken cancellationToken = default) => Registry.CollectAndExportAsTextAsync(stream, cancellationToken);

    /// <summary>The metrics in the Prometheus text format.</summary>
    /// <returns>The text.</returns>
    public async Task<string> ScrapeAsync()
    {
        using var buffer = new MemoryStream();
        await WriteAsync(buffer).ConfigureAwait(false);
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <inheritdoc />
    public void Dispose()
    {
        disposed = true;
        listener.Dispose();
    }

    private void CollectObservables()
    {
        if (disposed)
        {
            return;
        }

        List<Exported> observables;
        lock (gate)
        {
            observables = [.. exported.Values.Where(e => e.Observable)];
            foreach (var e in observables)
            {
                e.Seen.Clear();
            }
        }

        listener.RecordObservableInstruments();
        lock (gate)
        {
            // Label sets an observable instrument did not report this time are gone (a deleted task, a child that exited).
            foreach (var e in exported.Values.Where(e => e.Observable))
            {
                foreach (var stale in e.Reported.Where(r => !e.Seen.Contains(r.Key)).ToList())
                {
                    e.Remove(stale.Value);
                    e.Reported.Remove(stale.Key);
                }
            }
        }
    }

    private void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var labels = new List<KeyValuePair<string, string>>(tags.Length);
        foreach (var tag in tags)
        {
            if (keepLabel(instrument, tag.Key))
            {
                labels.Add(new(tag.Key, Convert.ToString(tag.Value, CultureInfo.InvariantCulture) ?? ""));
            }
        }

        labels.Sort((a, b) => string.CompareOrdinal(a.Key, b.Key));
        lock (gate)
        {
            if (!exported.TryGetValue(instrument, out var e))
            {
                e = Create(instrument, [.. labels.Select(l => l.Key)]);
                exported[instrument] = e;
            }

            var values = labels.Select(l => l.Value).ToArray();
            if (e.Observable)
            {
                var key = string.Join('\u0001', values);
                e.Seen.Add(key);
                e.Reported[key] = values;
            }

            switch (e.Collector)
            {
                case Prometheus.Counter counter when e.Observable:
                    counter.WithLabels(values).IncTo(value);
                    break;
                case Prometheus.Counter counter:
                    counter.WithLabels(values).Inc(Math.Max(0, value));
                    break;
                case Prometheus.Gauge gauge:
                    gauge.WithLabels(values).Set(value);
                    break;
                case Prometheus.Histogram histogram:
                    histogram.WithLabels(values).Observe(value);
                    break;
            }
        }
    }

    private Exported Create(Instrument instrument, string[] labelNames)
    {
        var help = string.IsNullOrEmpty(instrument.Description) ? instrument.Name : instrument.Description;
        return instrument switch
        {
            Counter<long> or Counter<int> or Counter<double> => Of(factory.CreateCounter(instrument.Name, help, labelNames), false),
            ObservableCounter<long> or ObservableCounter<int> or ObservableCounter<double> => Of(factory.CreateCounter(instrument.Name, help, labelNames), true),
            Histogram<double> h => Of(factory.CreateHistogram(instrument.Name, help, new HistogramConfiguration
            {
                LabelNames = labelNames,
                Buckets = h.Advice?.HistogramBucketBoundaries?.ToArray() ?? DefaultBuckets,
            }), false),
            _ => Of(factory.CreateGauge(instrument.Name, help, labelNames), instrument.IsObservable),
        };
    }

    private static Exported Of<TChild>(Collector<TChild> collector, bool observable)
        where TChild : ChildBase
    {
        return new(collector, observable, values => collector.RemoveLabelled(values));
    }

    private sealed record Exported(Collector Collector, bool Observable, Action<string[]> Remove)
    {
        public HashSet<string> Seen { get; } = [];

        public Dictionary<string, string[]> Reported { get; } = [];
    }
}
