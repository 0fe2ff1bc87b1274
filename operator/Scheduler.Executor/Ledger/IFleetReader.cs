using Dtask.Consul.Errors;
using Dtask.Core.Model;
using Dtask.Core.State;

namespace Dtask.Executor.Ledger;

/// <summary>A task spec as stored: its JSON (the envelope, unparsed) and the modify index to check-and-set against.</summary>
/// <param name="Json">The stored value as text; empty when the key holds nothing.</param>
/// <param name="ModifyIndex">The key's modify index when read.</param>
public sealed record StoredSpec(string Json, ulong ModifyIndex);

/// <summary>One entry of a task's run state (its run record, or a history entry) as stored.</summary>
/// <param name="Key">Where it is kept (named in warnings about an entry that holds no run record).</param>
/// <param name="Record">The run record; null when the entry holds none (garbage).</param>
/// <param name="ModifyIndex">The entry's modify index.</param>
public sealed record StoredRunEntry(string Key, RunRecord? Record, ulong ModifyIndex);

/// <summary>A pending control request of a task: a trigger not yet run or dropped, or the stop request of a run.</summary>
/// <param name="Action">Trigger or stop.</param>
/// <param name="Id">The trigger's id, or the run id a stop is for.</param>
/// <param name="CreateIndex">When the request was written (a trigger's place among the task's claims).</param>
/// <param name="Request">The request as written; null when the entry holds no readable request.</param>
public sealed record PendingRequest(ControlAction Action, string Id, ulong CreateIndex, ControlRequest? Request);

/// <summary>A task lock held by a session.</summary>
/// <param name="Task">The task.</param>
/// <param name="Session">The session holding its lock.</param>
public sealed record HeldLock(TaskId Task, string Session);

/// <summary>Where the ledger keeps a task's state, for messages that name it (never to read or write it).</summary>
/// <param name="TasksFolder">The folder of every task spec.</param>
/// <param name="Spec">The task's spec.</param>
/// <param name="State">The folder of the task's run state (run record, lock, history).</param>
/// <param name="TriggerFolder">The folder of the task's pending triggers.</param>
public sealed record TaskPlaces(string TasksFolder, string Spec, string State, string TriggerFolder)
{
    /// <summary>Where the trigger request <paramref name="id"/> is kept.</summary>
    public string Trigger(string id) => TriggerFolder + id;

    /// <summary>The places of <paramref name="task"/> in <paramref name="layout"/>.</summary>
    public static TaskPlaces Of(KvLayout layout, TaskId task)
    {
        ArgumentNullException.ThrowIfNull(layout);
        ArgumentNullException.ThrowIfNull(task);
        return new TaskPlaces(layout.TasksPrefix, layout.TaskKey(task.Namespace, task.Name), layout.TaskStatePrefix(task.Namespace, task.Name),
            layout.TaskControlPrefix(task.Namespace, task.Name) + "trigger/");
    }
}

/// <summary>
/// The reads of the ledger that show task state to people (<c>dtask history|get|describe</c>, the UI): typed views of
/// specs, run records, history, control requests and held locks, so no reader builds a key. Each read has the
/// consistency its documentation names: a consistent one is linearizable, the others are Consul's default (answered by
/// the leader, without the extra round that confirms it still leads).
/// </summary>
public interface IFleetReader
{
    /// <summary>Where the state of <paramref name="task"/> is kept, for messages.</summary>
    TaskPlaces Locate(TaskId task);

    /// <summary>The spec of <paramref name="task"/> as stored (default consistency); null when there is none.</summary>
    /// <exception cref="ConsulException">The ledger could not be read.</exception>
    Task<StoredSpec?> ReadSpecAsync(TaskId task, CancellationToken cancellationToken = default);

    /// <summary>
    /// Reads the folder of the specs of <paramref name="taskNamespace"/>, only to learn whether it may be read: a listing
    /// leaves out what may not be read, so an empty namespace and a forbidden one look alike there.
    /// </summary>
    /// <exception cref="ConsulPermissionDeniedException">The folder may not be read.</exception>
    /// <exception cref="ConsulException">The ledger could not be read.</exception>
    Task CheckSpecsReadableAsync(string taskNamespace, CancellationToken cancellationToken = default);

    /// <summary>The run record of <paramref name="task"/> as stored, read consistently (linearizable); null when there is none.</summary>
    /// <exception cref="ConsulException">The ledger could not be read.</exception>
    Task<StoredRunEntry?> ReadRunEntryAsync(TaskId task, CancellationToken cancellationToken = default);

    /// <summary>Every history entry of <paramref name="task"/> (manual runs' included) as stored, in key order (default consistency).</summary>
    /// <exception cref="ConsulException">The ledger could not be read.</exception>
    Task<IReadOnlyList<StoredRunEntry>> ListHistoryAsync(TaskId task, CancellationToken cancellationToken = default);

    /// <summary>Whether anything of the run state of <paramref name="task"/> is stored (run record, lock, history; default consistency).</summary>
    /// <exception cref="ConsulException">The ledger could not be read.</exception>
    Task<bool> HasRunStateAsync(TaskId task, CancellationToken cancellationToken = default);

    /// <summary>The pending control requests of <paramref name="task"/>, in key order (default consistency).</summary>
    /// <exception cref="ConsulException">The ledger could not be read.</exception>
    Task<IReadOnlyList<PendingRequest>> ListControlRequestsAsync(TaskId task, CancellationToken cancellationToken = default);

    /// <summary>Every task lock a session holds now, in key order (default consistency).</summary>
    /// <exception cref="ConsulException">The ledger could not be read.</exception>
    Task<IReadOnlyList<HeldLock>> ListHeldLocksAsync(CancellationToken cancellationToken = default);
}
