using System.Globalization;
using Dtask.Executor.Claims;

namespace Dtask.Executor.Processes;

/// <summary>
/// Who a child runs as, in dtask's terms: the variables every child receives (<c>DTASK_TASK</c>,
/// <c>DTASK_NAMESPACE</c>, <c>DTASK_SLOT</c>, <c>DTASK_NODE</c>, <c>DTASK_RUN_ID</c>, <c>DTASK_FENCE</c>). A task
/// that writes to other systems passes <c>DTASK_FENCE</c> along so they can refuse a stale holder. A manual run also
/// gets <c>DTASK_TRIGGER</c> (the <c>dtask trigger</c> request's id), and its <c>DTASK_SLOT</c> is the instant it was
/// claimed (a manual run is not a slot of the schedule).
/// </summary>
/// <param name="Namespace">The task's namespace.</param>
/// <param name="Task">The task's name.</param>
/// <param name="Slot">The slot id (Unix seconds).</param>
/// <param name="Node">The node running the child.</param>
/// <param name="RunId">The run's id.</param>
/// <param name="Fence">The fence token of the claim.</param>
public sealed record RunIdentity(string Namespace, string Task, long Slot, string Node, string RunId, long Fence)
{
    /// <summary>The variables, by name.</summary>
    public IReadOnlyDictionary<string, string> ToVariables()
    {
        var variables = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["DTASK_TASK"] = Task,
            ["DTASK_NAMESPACE"] = Namespace,
            ["DTASK_SLOT"] = Slot.ToString(CultureInfo.InvariantCulture),
            ["DTASK_NODE"] = Node,
            ["DTASK_RUN_ID"] = RunId,
            ["DTASK_FENCE"] = Fence.ToString(CultureInfo.InvariantCulture),
        };
        if (Trigger is { } trigger)
        {
            variables["DTASK_TRIGGER"] = trigger;
        }

        return variables;
    }

    /// <summary>For a manual run: the trigger request's id (<c>DTASK_TRIGGER</c>; not set for a scheduled slot).</summary>
    public string? Trigger { get; init; }

    /// <summary>The identity of <paramref name="run"/> on <paramref name="node"/>, under the claim's <paramref name="fence"/>.</summary>
    public static RunIdentity Of(SlotRun run, string node, long fence)
    {
        ArgumentNullException.ThrowIfNull(run);
        return new RunIdentity(run.Task.Namespace, run.Task.Name, run.Slot, node, run.RunId, fence);
    }
}
