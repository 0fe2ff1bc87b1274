namespace Dtask.Chaos.Evidence;

/// <summary>
/// One run as its own child witnessed it: the <c>start</c> line and, when the child got that far, the <c>end</c> line.
/// </summary>
/// <param name="Task">The task's name.</param>
/// <param name="Slot">The slot the child was handed (<c>DTASK_SLOT</c>).</param>
/// <param name="Node">The executor that ran it (<c>DTASK_NODE</c>).</param>
/// <param name="Fence">Its fence token (<c>DTASK_FENCE</c>).</param>
/// <param name="RunId">Its run id (<c>DTASK_RUN_ID</c>).</param>
/// <param name="Pid">The child shell's process id (also its process group id).</param>
/// <param name="Start">When the child wrote its start line.</param>
/// <param name="End">When it wrote its end line; null when it never did (killed with SIGKILL, or still running).</param>
/// <param name="Stopped">True when the end line came from the SIGTERM trap (the executor stopped the child).</param>
/// <param name="SeenStart">The start as the child's own clock (its executor's, under libfaketime) read it; null when not written.</param>
/// <param name="Host">The host whose witness log holds the lines (the executor whose network namespace the child ran in), null when not known.</param>
/// <param name="Trigger">The manual request the child ran for (<c>DTASK_TRIGGER</c>); null for a scheduled slot.</param>
/// <param name="Status">The exit status its end line gave; null without an end line, or an end line that did not say.</param>
public sealed record WitnessRun(string Task, long Slot, string Node, long Fence, string RunId, int Pid, DateTimeOffset Start, DateTimeOffset? End, bool Stopped,
    DateTimeOffset? SeenStart = null, string? Host = null, string? Trigger = null, int? Status = null)
{
    /// <summary>True for a manual run (<c>dtask trigger</c>): its slot is the instant it was claimed, not a scheduled slot.</summary>
    public bool IsManual => Trigger is not null;

    /// <summary>True when its end line says it failed by itself: a non-zero status, not stopped by its executor.</summary>
    public bool FailedByItself => End is not null && !Stopped && Status is { } s && s != 0;

    /// <summary>The slot's nominal instant.</summary>
    public DateTimeOffset SlotTime => DateTimeOffset.FromUnixTimeSeconds(Slot);

    /// <summary>How far the child's own clock was from the true one at its start (the executor's injected offset).</summary>
    public TimeSpan? ClockOffset => SeenStart - Start;

    /// <summary>The end, or <paramref name="otherwise"/> when the child never wrote one.</summary>
    public DateTimeOffset EndOr(DateTimeOffset otherwise) => End ?? otherwise;
}
