using System.Globalization;

namespace Dtask.Executor.Notifications.DataDog;

/// <summary>
/// Turns run events into DataDog metrics, tagged <c>task</c>, <c>namespace</c>, <c>node</c>, the constant tags
/// (<c>env</c>, <c>service</c>, <c>version</c>) and the task's <c>notify.datadog.tags</c>:
/// <list type="bullet">
/// <item><c>dtask.fire.delay</c> (distribution, ms from the nominal slot to the child's start), on start;</item>
/// <item><c>dtask.run.duration</c> (distribution, ms) and <c>dtask.run.count</c> (count, tag <c>result</c>:
/// <c>succeeded</c> | <c>failed</c> | <c>timed_out</c>), on finish;</item>
/// <item><c>dtask.slot.missed</c> (count) and <c>dtask.lock.lost</c> (count).</item>
/// </list>
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

    /// <summary>Creates the notifier.</summary>
    /// <param name="sink">Where points go; owned (disposed with the notifier).</param>
    /// <param name="constantTags">Tags on every point.</param>
    public DataDogNotifier(IMetricSink sink, IReadOnlyList<string> constantTags)
    {
        ArgumentNullException.ThrowIfNull(sink);
        ArgumentNullException.ThrowIfNull(constantTags);
        this.sink = sink;
        this.constantTags = constantTags.Select(DogStatsDFormat.SanitizeTag).ToArray();
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
    public void RunStarted(RunContext run)
    {
        ArgumentNullException.ThrowIfNull(run);
        var tags = Tags(run.Namespace, run.Task, run.Node, run.Notify);
        sink.Submit([new MetricPoint(FireDelay, Math.Max(0, run.FireDelay.TotalMilliseconds), MetricKind.Distribution, tags, run.Node)]);
    }

    /// <inheritdoc />
    public void RunFinished(RunContext run, RunOutcome outcome)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(outcome);
        var tags = Tags(run.Namespace, run.Task, run.Node, run.Notify);
        sink.Submit(
        [
            new MetricPoint(RunDuration, Math.Max(0, outcome.Duration.TotalMilliseconds), MetricKind.Distribution, tags, run.Node),
            new MetricPoint(RunCount, 1, MetricKind.Count, [.. tags, DogStatsDFormat.Tag("result", ResultTag(outcome.Result))], run.Node),
        ]);
    }

    /// <inheritdoc />
    public void SlotMissed(MissedSlot slot)
    {
        ArgumentNullException.ThrowIfNull(slot);
        sink.Submit([new MetricPoint(SlotMissedMetric, 1, MetricKind.Count, Tags(slot.Namespace, slot.Task, slot.Node, slot.Notify), slot.Node)]);
    }

    /// <inheritdoc />
    public void LockLost(RunContext run, string reason)
    {
        ArgumentNullException.ThrowIfNull(run);
        sink.Submit([new MetricPoint(LockLostMetric, 1, MetricKind.Count, Tags(run.Namespace, run.Task, run.Node, run.Notify), run.Node)]);
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => sink.DisposeAsync();

    /// <summary>Describes the notifier for logs.</summary>
    /// <returns>The sink's kind and constant tags.</returns>
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"datadog metrics via {sink.GetType().Name}, tags [{string.Join(',', constantTags)}]");

    private string[] Tags(string ns, string task, string node, TaskNotification? notify)
    {
        var taskTags = notify?.DataDogTags ?? [];
        var tags = new List<string>(constantTags.Length + taskTags.Count + 3);
        tags.AddRange(constantTags);
        tags.AddRange(taskTags.Select(DogStatsDFormat.SanitizeTag).Where(t => t.Length > 0));
        tags.Add(DogStatsDFormat.Tag("task", task));
        tags.Add(DogStatsDFormat.Tag("namespace", ns));
        tags.Add(DogStatsDFormat.Tag("node", node));
        return [.. tags];
    }
}
