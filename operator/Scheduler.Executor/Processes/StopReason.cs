namespace Dtask.Executor.Processes;

/// <summary>Why a child was stopped on request.</summary>
public enum StopCause
{
    /// <summary>The task's lock was lost (the key showed it, or a retry found it no longer held).</summary>
    LockLost,

    /// <summary>The executor's session was lost, or its lease ran out while the child ran.</summary>
    SessionLost,

    /// <summary>A <c>Replace</c> request stopped it for a newer run.</summary>
    Replaced,

    /// <summary>The executor or <c>dtask run</c> is shutting down.</summary>
    Shutdown,

    /// <summary>The caller's stop request, passed on to the run (its text names the caller's reason).</summary>
    Stopped,

    /// <summary>Any other reason; the detail says it.</summary>
    Other,
}

/// <summary>
/// A typed reason for stopping a child: decisions look at <see cref="Cause"/>, and <see cref="Text"/> is the reason
/// written into the run record (<c>lock-lost: …</c>, <c>session-lost: …</c>, <c>replaced</c>, <c>shutdown</c>,
/// <c>stopped: …</c>).
/// </summary>
/// <param name="Cause">What stopped it.</param>
/// <param name="Detail">More words after the cause's code, or null.</param>
public sealed record StopReason(StopCause Cause, string? Detail = null)
{
    /// <summary>A <c>Replace</c> request.</summary>
    public static readonly StopReason Replaced = new(StopCause.Replaced);

    /// <summary>The lock was lost; <c>lock-lost</c>, or <c>lock-lost: detail</c>.</summary>
    public static StopReason LockLost(string? detail = null) => new(StopCause.LockLost, detail);

    /// <summary>The session was lost: <c>session-lost: detail</c>.</summary>
    public static StopReason SessionLost(string detail) => new(StopCause.SessionLost, detail);

    /// <summary>A shutdown; <c>shutdown</c>, or <c>shutdown: signal</c>.</summary>
    public static StopReason Shutdown(string? signal = null) => new(StopCause.Shutdown, signal);

    /// <summary>The caller's stop passed on: <c>stopped: </c> and the caller's reason (<c>requested</c> without one).</summary>
    public static StopReason StoppedBy(StopReason? caller) => new(StopCause.Stopped, caller?.Text ?? "requested");

    /// <summary>Any other reason, written as given.</summary>
    public static StopReason Other(string text)
    {
        ArgumentException.ThrowIfNullOrEmpty(text);
        return new(StopCause.Other, text);
    }

    /// <summary>The reason as the run record and the logs write it.</summary>
    public string Text => Cause switch
    {
        StopCause.LockLost => Prefixed("lock-lost"),
        StopCause.SessionLost => Prefixed("session-lost"),
        StopCause.Replaced => Prefixed("replaced"),
        StopCause.Shutdown => Prefixed("shutdown"),
        StopCause.Stopped => Prefixed("stopped"),
        _ => Detail ?? "stopped",
    };

    /// <inheritdoc />
    public override string ToString() => Text;

    private string Prefixed(string code) => Detail is null ? code : code + ": " + Detail;
}
