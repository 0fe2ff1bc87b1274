using Dtask.Executor.Logging;

namespace Dtask.Executor.Claims;

/// <summary>
/// The reasons the executor writes into run records and history for slots and runs that did not run (or whose end it
/// did not see), as <c>dtask history</c> and <c>dtask describe</c> show them. Why a running child was stopped is a
/// <see cref="Processes.StopReason"/>.
/// </summary>
public static class RunReasons
{
    /// <summary>A slot skipped under <c>Forbid</c>: the task's previous run was still running.</summary>
    public const string StillRunning = "still-running";

    /// <summary>A slot no executor claimed before its deadline.</summary>
    public const string NotClaimedBeforeDeadline = "not-claimed-before-deadline";

    /// <summary>A slot the executor's loop did not fire in time (it was paused, or came late).</summary>
    public const string NotFiredInTime = "not-fired-in-time";

    /// <summary>
    /// A slot a later claim passed over: it was neither run nor recorded when a later slot of the task was claimed (its
    /// contenders gave up or died before they recorded it), and it can never be claimed after that.
    /// </summary>
    public const string PassedOver = "passed-over";

    /// <summary>A run whose holder's session is gone before it recorded an end: its outcome is unknown.</summary>
    public const string HolderSessionGone = "holder-session-gone";

    /// <summary>
    /// A slot whose claim was stored but never confirmed to its claimant (the answer was lost and Consul could not be
    /// read back before the claimant gave up): recorded <c>missed</c>, nothing ran.
    /// </summary>
    public const string ClaimUnconfirmed = "claim-unconfirmed";

    /// <summary>A manual trigger dropped because the task stayed busy for <paramref name="busyFor"/>.</summary>
    public static string TriggerExpired(TimeSpan busyFor) => $"trigger-expired: the task was busy for {DurationText.Of(busyFor)}";
}
