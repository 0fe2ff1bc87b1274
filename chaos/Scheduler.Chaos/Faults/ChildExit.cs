namespace Dtask.Chaos.Faults;

/// <summary>
/// A child that was running when its executor died (or was stopped with it), and when it was seen gone (from
/// <c>/proc</c>, found by its <c>DTASK_RUN_ID</c>): the end of a child killed before it could write its end line.
/// </summary>
/// <param name="Node">The executor.</param>
/// <param name="RunId">The child's run id.</param>
/// <param name="Pid">The child shell's pid.</param>
/// <param name="ExecutorDiedAt">When the executor was killed (or the tree paused).</param>
/// <param name="GoneAt">When the child was first seen gone; null when it still ran at the end of the watch.</param>
/// <param name="Cause">The fault: an executor kill (the child must be gone within the termination grace) or a tree pause.</param>
public sealed record ChildExit(string Node, string RunId, int Pid, DateTimeOffset ExecutorDiedAt, DateTimeOffset? GoneAt, FaultKind Cause = FaultKind.ExecutorKill);
