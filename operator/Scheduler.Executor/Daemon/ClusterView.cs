using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Executor.Claims;

namespace Dtask.Executor.Daemon;

/// <summary>A control request as stored: its key decides what it is (trigger or stop, and its id); the value is informational.</summary>
/// <param name="Task">The task it is about.</param>
/// <param name="Action">Trigger or stop.</param>
/// <param name="Key">The key.</param>
/// <param name="Id">The key's last segment: the trigger's id, or the run id to stop.</param>
/// <param name="Request">The stored value, when it reads as a request.</param>
/// <param name="CreateIndex">The key's CreateIndex (a trigger's identity and order, assigned by Consul).</param>
/// <param name="ModifyIndex">The key's ModifyIndex.</param>
public sealed record StoredControl(TaskId Task, ControlAction Action, string Key, string Id, ControlRequest? Request, ulong CreateIndex, ulong ModifyIndex)
{
    /// <summary>The trigger this request is, for the claim.</summary>
    public ManualTrigger AsTrigger() => new(Id, Key, CreateIndex);
}

/// <summary>
/// What this executor currently knows of the cluster, as the watches last saw it: the valid tasks, the live nodes, the
/// pending control requests. Each part is replaced whole (immutable snapshots), and a change raises its event.
/// </summary>
public sealed class ClusterView
{
    private IReadOnlyDictionary<TaskId, TaskDefinition> tasks = new Dictionary<TaskId, TaskDefinition>();
    private IReadOnlyList<NodeRecord> nodes = [];
    private IReadOnlyDictionary<string, StoredControl> controls = new Dictionary<string, StoredControl>();

    /// <summary>Raised after <see cref="Tasks"/> changed.</summary>
    public event Action? TasksChanged;

    /// <summary>Raised after <see cref="Controls"/> changed.</summary>
    public event Action? ControlsChanged;

    /// <summary>The valid tasks.</summary>
    public IReadOnlyDictionary<TaskId, TaskDefinition> Tasks => Volatile.Read(ref tasks);

    /// <summary>The live executors (their keys vanish with their sessions).</summary>
    public IReadOnlyList<NodeRecord> Nodes => Volatile.Read(ref nodes);

    /// <summary>Pending control requests by key.</summary>
    public IReadOnlyDictionary<string, StoredControl> Controls => Volatile.Read(ref controls);

    /// <summary>Replaces the tasks.</summary>
    public void SetTasks(IReadOnlyDictionary<TaskId, TaskDefinition> value)
    {
        Volatile.Write(ref tasks, value);
        TasksChanged?.Invoke();
    }

    /// <summary>Replaces the nodes.</summary>
    public void SetNodes(IReadOnlyList<NodeRecord> value) => Volatile.Write(ref nodes, value);

    /// <summary>Replaces the control requests.</summary>
    public void SetControls(IReadOnlyDictionary<string, StoredControl> value)
    {
        Volatile.Write(ref controls, value);
        ControlsChanged?.Invoke();
    }
}
