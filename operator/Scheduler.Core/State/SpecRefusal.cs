namespace Dtask.Core.State;

/// <summary>
/// An executor refused a task's spec because its signature did not verify (<c>state/&lt;ns&gt;/&lt;name&gt;/spec-refused</c>).
/// It concerns the spec value of <see cref="SpecIndex"/> only: once the spec is replaced by a verified one, it is stale.
/// </summary>
/// <param name="Node">The executor that refused it.</param>
/// <param name="SpecIndex">The ModifyIndex of the refused spec value.</param>
/// <param name="Reason">Why, e.g. <c>it is not signed</c>.</param>
/// <param name="KeptIndex">The ModifyIndex of the verified spec the executors keep running instead; null when there is none (the task does not run).</param>
/// <param name="At">When it was refused, by the executor's clock.</param>
public sealed record SpecRefusal(string Node, ulong SpecIndex, string Reason, ulong? KeptIndex, DateTimeOffset At);
