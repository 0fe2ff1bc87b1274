namespace Dtask.Chaos.Faults;

/// <summary>A child that was running when its executor died, and when it was seen gone (from <c>/proc</c>, found by its <c>DTASK_RUN_ID</c>).</summary>
/// <param name="Node">The executor.</param>
/// <param name="RunId">The child's run id.</param>
/// <param name="Pid">The child shell's pid.</param>
/// <param name="ExecutorDiedAt">When the executor was killed.</param>
/// <param name="GoneAt">When the child was first seen gone; null when it still ran at the end of the watch.</param>
public sealed record ChildExit(string Node, string RunId, int Pid, DateTimeOffset ExecutorDiedAt, DateTimeOffset? GoneAt);
