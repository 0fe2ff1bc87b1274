using Dtask.Executor.Claims;

namespace Dtask.Executor;

/// <summary>
/// Describes one claimed run of a task: what the executor knows about it when the child starts. Logging
/// attaches these fields to every line about the run; notifiers put them into messages and metric tags.
/// </summary>
/// <param name="Namespace">The task's namespace.</param>
/// <param name="Task">The task's name within its namespace.</param>
/// <param name="Node">The node that claimed the slot and runs the child.</param>
/// <param name="Slot">The nominal fire time of the slot, in Unix seconds (the slot's id).</param>
/// <param name="RunId">The run's id, as handed to the child in <c>DTASK_RUN_ID</c>.</param>
/// <param name="Command">A display string of the command (argv joined, or the shell text); never secrets.</param>
/// <param name="FireDelay">Time from the nominal slot to the child's start.</param>
/// <param name="Notify">The task's own notification settings from its manifest; null to use the defaults.</param>
public sealed record RunContext(
    string Namespace,
    string Task,
    string Node,
    long Slot,
    string RunId,
    string Command,
    TimeSpan FireDelay,
    TaskNotification? Notify = null)
{
    /// <summary>The slot as an instant in UTC.</summary>
    public DateTimeOffset SlotTime => DateTimeOffset.FromUnixTimeSeconds(Slot);

    /// <summary>The context of <paramref name="run"/> on <paramref name="node"/>, before its child starts (no fire delay yet).</summary>
    public static RunContext Of(SlotRun run, string node, string command, TaskNotification? notify = null)
    {
        ArgumentNullException.ThrowIfNull(run);
        return new RunContext(run.Task.Namespace, run.Task.Name, node, run.Slot, run.RunId, command, TimeSpan.Zero, notify);
    }
}

/// <summary>
/// A slot that nobody could fire before its deadline (Consul unreachable, every node busy, the executor down).
/// </summary>
/// <param name="Namespace">The task's namespace.</param>
/// <param name="Task">The task's name within its namespace.</param>
/// <param name="Node">The node that noticed and recorded the miss.</param>
/// <param name="Slot">The missed slot, in Unix seconds.</param>
/// <param name="Reason">Why the slot was missed, in a few words.</param>
/// <param name="Notify">The task's own notification settings from its manifest; null to use the defaults.</param>
public sealed record MissedSlot(
    string Namespace,
    string Task,
    string Node,
    long Slot,
    string Reason,
    TaskNotification? Notify = null)
{
    /// <summary>The slot as an instant in UTC.</summary>
    public DateTimeOffset SlotTime => DateTimeOffset.FromUnixTimeSeconds(Slot);
}

/// <summary>How a run ended, when it ended by itself or by its timeout.</summary>
public enum RunResult
{
    /// <summary>The child exited with code 0.</summary>
    Succeeded,

    /// <summary>The child exited with a non-zero code, was killed by a signal, or could not start.</summary>
    Failed,

    /// <summary>The child outlived the task's timeout and was stopped.</summary>
    TimedOut,
}

/// <summary>The end of a run, as reported to notifiers.</summary>
/// <param name="Result">Succeeded, failed or timed out.</param>
/// <param name="Duration">From the child's start to its exit.</param>
/// <param name="ExitCode">The child's exit code; null when it never started or was killed by a signal.</param>
/// <param name="OutputTail">The last few KiB of the child's combined output (see <c>OutputTail</c>).</param>
public sealed record RunOutcome(RunResult Result, TimeSpan Duration, int? ExitCode, string OutputTail);

/// <summary>
/// A task's notification settings, from its manifest's <c>notify</c> section.
/// </summary>
/// <param name="SlackOn">
/// The Slack events the task asked for (<c>notify.slack.on</c>); an empty set sends nothing to Slack for this task;
/// null uses the executor's default set.
/// </param>
/// <param name="DataDogTags">Extra DogStatsD tags (<c>notify.datadog.tags</c>), each <c>key:value</c> or <c>key</c>.</param>
public sealed record TaskNotification(IReadOnlySet<Notifications.NotificationEvent>? SlackOn, IReadOnlyList<string> DataDogTags)
{
    /// <summary>No task-specific settings: the executor's defaults apply.</summary>
    public static TaskNotification Defaults { get; } = new(null, []);
}
