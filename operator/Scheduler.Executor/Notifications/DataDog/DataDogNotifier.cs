using System.Diagnostics.Metrics;
using System.Globalization;
using Dtask.Executor.Metrics;

namespace Dtask.Executor.Notifications.DataDog;

/// <summary>
/// Sends the executor's run instruments (<see cref="ExecutorInstruments"/>) to DataDog — the same measurements
/// Prometheus exports, read with a <see cref="MeterListener"/> — tagged <c>task</c>, <c>namespace</c>, <c>node</c>, the
/// constant tags (<c>env</c>, <c>service</c>, <c>version</c>) and the task's <c>notify.datadog.tags</c>:
/// <list type="bullet">
/// <item><c>dtask.fire.delay</c> (distribution, ms from the nominal slot to the child's start), on start;</item>
/// <item><c>dtask.run.duration</c> (distribution, ms) and <c>dtask.run.count</c> (count, tag <c>result</c>:
/// <c>succeeded</c> | <c>failed</c> | <c>timed_out</c>), on finish;</item>
/// <item><c>dtask.slot.missed</c> (count) and <c>dtask.lock.lost</c> (count).</item>
/// </list>
/// The points of one run event go to the sink together.
/// </summary>
public sealed class DataDogNotifier : IRunNotifier
{
    /// <summary>Run duration, ms.</summary>
    public const string RunDuration = "dtask.run.duration";

    /// <summary>Finished runs, tagged by result.</summary>
    public const string RunCount = "dtask.run.count";

    /// <summary>Delay from the nominal slot to the child's start, ms.</summary>
    public const string FireDelay = "dtask.fire.delay";

    /// <summary>Missed slots.</summary>
    public const string SlotMissedMetric = "dtask.slot.missed";

    /// <summary>Lost locks.</summary>
    public const string LockLostMetric = "dtask.lock.lost";

    private readonly IMetricSink sink;
    private readonly string[] constantTags;
    private readonly ExecutorInstruments instruments;
    private readonly ExecutorInstruments? owned;
    private readonly MeterListener listener = new();
    private readonly ThreadLocal<List<(string Name, double Value, MetricKind Kind, Dictionary<string, string> Tags)>> pending = new(() => []);

    /// <summary>Creates the notifier with instruments of its own, which its run events feed.</summary>
    /// <param name="sink">Where points go; owned (disposed with the notifier).</param>
    /// <param name="constantTags">Tags on every point.</param>
    public DataDogNotifier(IMetricSink sink, IReadOnlyList<string> constantTags)
        : this(sink, constantTags, null)
    {
    }

    /// <summary>Creates the notifier reading <paramref name="instruments"/>.</summary>
    /// <param name="sink">Where points go; owned (disposed with the notifier).</param>
    /// <param name="constantTags">Tags on every point.</param>
    /// <param name="instruments">The instruments to read, fed by the caller (this notifier's run events then do nothing); its own when null.</param>
    public DataDogNotifier(IMetricSink sink, IReadOnlyList<string> constantTags, ExecutorInstruments? instruments)
    {
        ArgumentNullException.ThrowIfNull(sink);
        ArgumentNullException.ThrowIfNull(constantTags);
        this.sink = sink;
        this.constantTags = constantTags.Select(DogStatsDFormat.SanitizeTag).ToArray();
        owned = instruments is null ? new ExecutorInstruments() : null;
        this.instruments = instruments ?? owned!;
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (ReferenceEquals(instrument.Meter, this.instruments.Meter)
                && instrument.Name is ExecutorInstruments.FireDelaySeconds or ExecutorInstruments.RunDurationSeconds
                    or ExecutorInstruments.RunsTotal or ExecutorInstruments.MissedSlotsTotal)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<double>((i, value, tags, _) => Measured(i, value, tags));
        listener.SetMeasurementEventCallback<long>((i, value, tags, _) => Measured(i, value, tags));
        listener.Start();
        this.instruments.Recorded += Flush;
    }

    /// <summary>The name of a result as the <c>result</c> tag spells it.</summary>
    /// <param name="result">The result.</param>
    /// <returns><c>succeeded</c>, <c>failed</c> or <c>timed_out</c>.</returns>
    public static string ResultTag(RunResult result) => result switch
    {
        RunResult.Succeeded => "succeeded",
        RunResult.TimedOut => "timed_out",
        _ => "failed",
    };

    /// <inheritdoc />
    public void RunStarted(RunContext run) => owned?.Notifier.RunStarted(run);

    /// <inheritdoc />
    public void RunFinished(RunContext run, RunOutcome outcome) => owned?.Notifier.RunFinished(run, outcome);

    /// <inheritdoc />
    public void SlotMissed(MissedSlot slot) => owned?.Notifier.SlotMissed(slot);

    /// <inheritdoc />
    public void LockLost(RunContext run, string reason) => owned?.Notifier.LockLost(run, reason);

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        instruments.Recorded -= Flush;
        listener.Dispose();
        owned?.Dispose();
        pending.Dispose();
        await sink.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>Describes the notifier for logs.</summary>
    /// <returns>The sink's kind and constant tags.</returns>
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"datadog metrics via {sink.GetType().Name}, tags [{string.Join(',', constantTags)}]");

    private void Measured(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var byKey = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var tag in tags)
        {
            byKey[tag.Key] = Convert.ToString(tag.Value, CultureInfo.InvariantCulture) ?? "";
        }

        var state = byKey.GetValueOrDefault(ExecutorInstruments.StateTag);
        var point = instrument.Name switch
        {
            ExecutorInstruments.FireDelaySeconds => (FireDelay, value * 1000, MetricKind.Distribution, byKey),
            ExecutorInstruments.RunDurationSeconds => (RunDuration, value * 1000, MetricKind.Distribution, byKey),
            ExecutorInstruments.RunsTotal when state == "lost" => (LockLostMetric, value, MetricKind.Count, byKey),
            ExecutorInstruments.RunsTotal => (RunCount, value, MetricKind.Count, byKey),
            _ => (SlotMissedMetric, value, MetricKind.Count, byKey),
        };
        pending.Value!.Add(point);
    }

    private void Flush(TaskNotification? notify)
    {
        var points = pending.Value!;
        if (points.Count == 0)
        {
            return;
        }

        var taskTags = (notify?.DataDogTags ?? []).Select(DogStatsDFormat.SanitizeTag).Where(t => t.Length > 0).ToArray();
        var batch = new List<MetricPoint>(points.Count);
        foreach (var (name, value, kind, tags) in points)
        {
            var node = tags.GetValueOrDefault(ExecutorInstruments.NodeTag, "");
            var list = new List<string>(constantTags.Length + taskTags.Length + 4);
            list.AddRange(constantTags);
            list.AddRange(taskTags);
            list.Add(DogStatsDFormat.Tag("task", tags.GetValueOrDefault(ExecutorInstruments.TaskTag, "")));
            list.Add(DogStatsDFormat.Tag("namespace", tags.GetValueOrDefault(ExecutorInstruments.NamespaceTag, "")));
            list.Add(DogStatsDFormat.Tag("node", node));
            if (name == RunCount)
            {
                list.Add(DogStatsDFormat.Tag("result", tags.GetValueOrDefault(ExecutorInstruments.StateTag, "")));
            }

            batch.Add(new MetricPoint(name, value, kind, [.. list], node));
        }

        points.Clear();
        sink.Submit(batch);
    }
}
