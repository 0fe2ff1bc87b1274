using Dtask.Core.Model;

namespace Dtask.Executor.Claims;

/// <summary>
/// One run of one slot of one task: the identity a claimed run's child variables (<see cref="Processes.RunIdentity"/>)
/// and its log lines and notifications (<see cref="RunContext"/>) are built from.
/// </summary>
/// <param name="Task">The task.</param>
/// <param name="Slot">The slot id (Unix seconds; for a manual run, the instant it was claimed).</param>
/// <param name="RunId">The run's id.</param>
public sealed record SlotRun(TaskId Task, long Slot, string RunId);
