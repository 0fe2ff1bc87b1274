using System.Diagnostics.Metrics;
using Dtask.Core.Metrics;

namespace Dtask.Core.Tests.Metrics;

public class PrometheusMeterExportTests
{
    [Fact]
    public async Task Counters_histograms_and_gauges_of_the_meter_are_exported_with_their_types_and_labels()
    {
        using var meter = new Meter("test.export");
        using var other = new Meter("test.other");
        using var export = new PrometheusMeterExport(meter, (instrument, tag) => !(instrument is Histogram<double> && tag == "task"));
        var runs = meter.CreateCounter<long>("x_runs_total", description: "Runs.");
        var delay = meter.CreateHistogram("x_delay_seconds", "s", "Delay.", advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.1, 1] });
        var tasks = new List<string> { "a", "b" };
        meter.CreateObservableGauge("x_next_seconds", () => tasks.Select(t => new Measurement<double>(t == "a" ? 10 : 20, new KeyValuePair<string, object?>("task", t))));
        other.CreateCounter<long>("y_total").Add(5);

        runs.Add(1, new("task", "a"), new("state", "ok"));
        runs.Add(2, new("task", "a"), new("state", "ok"));
        runs.Add(1, new("state", "failed"), new("task", "b"));
        delay.Record(0.5, new KeyValuePair<string, object?>("task", "a"));
        delay.Record(2, new KeyValuePair<string, object?>("task", "b"));

        var text = await export.ScrapeAsync();
        Assert.Contains("# TYPE x_runs_total counter", text, StringComparison.Ordinal);
        Assert.Contains("x_runs_total{state=\"ok\",task=\"a\"} 3", text, StringComparison.Ordinal);
        Assert.Contains("x_runs_total{state=\"failed\",task=\"b\"} 1", text, StringComparison.Ordinal);
        Assert.Contains("# TYPE x_delay_seconds histogram", text, StringComparison.Ordinal);
        Assert.Contains("x_delay_seconds_bucket{le=\"0.1\"} 0", text, StringComparison.Ordinal);
        Assert.Contains("x_delay_seconds_bucket{le=\"1\"} 1", text, StringComparison.Ordinal);
        Assert.Contains("x_delay_seconds_bucket{le=\"+Inf\"} 2", text, StringComparison.Ordinal);
        Assert.Contains("x_delay_seconds_count 2", text, StringComparison.Ordinal);
        Assert.Contains("# TYPE x_next_seconds gauge", text, StringComparison.Ordinal);
        Assert.Contains("x_next_seconds{task=\"a\"} 10", text, StringComparison.Ordinal);
        Assert.Contains("x_next_seconds{task=\"b\"} 20", text, StringComparison.Ordinal);
        Assert.DoesNotContain("y_total", text, StringComparison.Ordinal);

        // A label set an observable instrument stops reporting (a deleted task) leaves the output.
        tasks.Remove("b");
        text = await export.ScrapeAsync();
        Assert.Contains("x_next_seconds{task=\"a\"} 10", text, StringComparison.Ordinal);
        Assert.DoesNotContain("x_next_seconds{task=\"b\"}", text, StringComparison.Ordinal);
    }
}
