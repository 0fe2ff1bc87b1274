using Serilog;

namespace Dtask.Executor.Logging;

/// <summary>
/// The Serilog property names the executor uses for a run's identity, and the journal fields they become.
/// Log with these names (or through <see cref="RunLogging.ForRun"/>) and the journal sink writes the
/// matching <c>DTASK_*</c> field, so <c>journalctl DTASK_TASK=backup</c> finds every line about the task.
/// </summary>
public static class LogProperties
{
    /// <summary>The task's name → <c>DTASK_TASK</c>.</summary>
    public const string Task = "Task";

    /// <summary>The task's namespace → <c>DTASK_NAMESPACE</c>.</summary>
    public const string Namespace = "Namespace";

    /// <summary>The slot in Unix seconds → <c>DTASK_SLOT</c>.</summary>
    public const string Slot = "Slot";

    /// <summary>The run's id → <c>DTASK_RUN_ID</c>.</summary>
    public const string RunId = "RunId";

    /// <summary>The node's name → <c>DTASK_NODE</c>.</summary>
    public const string Node = "Node";

    /// <summary>Which of the child's streams a forwarded line came from (<c>stdout</c> | <c>stderr</c>) → <c>CHILD_STREAM</c>.</summary>
    public const string ChildStream = "ChildStream";

    /// <summary>A forwarded line of child output. It is the entry's MESSAGE and is not repeated as a field.</summary>
    public const string ChildOutput = "ChildOutput";

    /// <summary>The Serilog property → journal field pairs of a run's identity.</summary>
    public static IReadOnlyDictionary<string, string> JournalFields { get; } = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        [Task] = "DTASK_TASK",
        [Namespace] = "DTASK_NAMESPACE",
        [Slot] = "DTASK_SLOT",
        [RunId] = "DTASK_RUN_ID",
        [Node] = "DTASK_NODE",
    };
}

/// <summary>Attaches a run's identity to a logger.</summary>
public static class RunLogging
{
    /// <summary>
    /// A logger whose events carry the run's <see cref="LogProperties.Task"/>, <see cref="LogProperties.Namespace"/>,
    /// <see cref="LogProperties.Slot"/>, <see cref="LogProperties.RunId"/> and <see cref="LogProperties.Node"/>.
    /// </summary>
    /// <param name="logger">The logger to extend.</param>
    /// <param name="run">The run.</param>
    /// <returns>A logger for the run.</returns>
    public static ILogger ForRun(this ILogger logger, RunContext run)
    {
        ArgumentNullException.ThrowIfNull(logger);
        ArgumentNullException.ThrowIfNull(run);
        return logger
            .ForContext(LogProperties.Namespace, run.Namespace)
            .ForContext(LogProperties.Task, run.Task)
            .ForContext(LogProperties.Slot, run.Slot)
            .ForContext(LogProperties.RunId, run.RunId)
            .ForContext(LogProperties.Node, run.Node);
    }

    /// <summary>A logger whose events carry the identity of a missed slot (no run id: nothing ran).</summary>
    /// <param name="logger">The logger to extend.</param>
    /// <param name="slot">The missed slot.</param>
    /// <returns>A logger for the slot.</returns>
    public static ILogger ForSlot(this ILogger logger, MissedSlot slot)
    {
        ArgumentNullException.ThrowIfNull(logger);
        ArgumentNullException.ThrowIfNull(slot);
        return logger
            .ForContext(LogProperties.Namespace, slot.Namespace)
            .ForContext(LogProperties.Task, slot.Task)
            .ForContext(LogProperties.Slot, slot.Slot)
            .ForContext(LogProperties.Node, slot.Node);
    }
}
