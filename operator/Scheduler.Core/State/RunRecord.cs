using System.Text.Json.Serialization;

namespace Dtask.Core.State;

/// <summary>
/// One run of a task for one slot, as stored at <c>state/&lt;ns&gt;/&lt;name&gt;/run</c> (the current or last run)
/// and <c>state/&lt;ns&gt;/&lt;name&gt;/history/&lt;slot&gt;</c> (finished runs). <c>dtask history -o json</c> prints
/// exactly these records.
/// </summary>
public sealed record RunRecord
{
    /// <summary>
    /// The slot: its nominal UTC instant in Unix seconds. A manual run (<see cref="Trigger"/> set) is not a slot: it keeps
    /// the slot of the record it follows (0 when the task never had one), so the record's slot stays the last scheduled
    /// slot decided.
    /// </summary>
    public required long Slot { get; init; }

    /// <summary>A unique id of this run (also handed to the child as <c>DTASK_RUN_ID</c>).</summary>
    public required string RunId { get; init; }

    /// <summary>The executor that claimed the slot (or that recorded it skipped or missed).</summary>
    public required string Node { get; init; }

    /// <summary>The Consul session that held the lock while the run went on; null for records that never ran.</summary>
    public string? Session { get; init; }

    /// <summary>
    /// The fence token: the ModifyIndex of the claim write of the run record, monotonic per task. Handed to the child
    /// as <c>DTASK_FENCE</c> so that systems it writes to can reject a stale holder. Zero for records that never ran.
    /// </summary>
    public long Fence { get; init; }

    /// <summary>Where the run is.</summary>
    public required RunState State { get; init; }

    /// <summary>Why it ended this way, in a short kebab-case word or phrase (<c>still-running</c>, <c>exit-code</c>, <c>timeout</c>, <c>session-invalidated</c>…).</summary>
    public string? Reason { get; init; }

    /// <summary>When the child started (or when the record was written, for records that never ran).</summary>
    public DateTimeOffset? StartedAt { get; init; }

    /// <summary>When the run ended.</summary>
    public DateTimeOffset? FinishedAt { get; init; }

    /// <summary>The child's exit code, when it exited by itself.</summary>
    public int? ExitCode { get; init; }

    /// <summary>1 for the first attempt of the slot, 2 for the first retry, and so on.</summary>
    public int Attempt { get; init; } = 1;

    /// <summary>The last 4 KiB of the child's combined stdout and stderr.</summary>
    public string? OutputTail { get; init; }

    /// <summary>For a manual run: the id of the <c>dtask trigger</c> request it runs (also handed to the child as <c>DTASK_TRIGGER</c>).</summary>
    public string? Trigger { get; init; }

    /// <summary>For a manual run: the CreateIndex of the trigger's key, which orders manual runs and names their history entries.</summary>
    public long? TriggerIndex { get; init; }

    /// <summary>
    /// The slot of the record this one replaced, while the scheduled slots between it and <see cref="Slot"/> may still lack
    /// a record: the next executor to replace this record records them missed (<c>passed-over</c>) when they have none.
    /// Null when there is nothing before it to look at (the claimer looked, or the task had no record).
    /// </summary>
    public long? PreviousSlot { get; init; }

    /// <summary>
    /// Written by the finisher of a scheduled run when the task's slot history was exactly its history limit of
    /// consecutive slots of its schedule, ending at this record's slot: the oldest of them. The next finisher, whose slot
    /// follows this one, then knows which entry to trim without listing the history. Null when not known.
    /// </summary>
    public long? HistoryFrom { get; init; }

    /// <summary>The schedule whose consecutive slots <see cref="HistoryFrom"/> counts (a fingerprint of its expression and time zone).</summary>
    public string? HistorySchedule { get; init; }

    /// <summary>True for a manual run (or a dropped trigger).</summary>
    [JsonIgnore]
    public bool IsManual => TriggerIndex is not null;

    /// <summary>The instant to order records by, in Unix seconds: the slot, or for a manual run when it started.</summary>
    [JsonIgnore]
    public long OrderKey => IsManual ? StartedAt?.ToUnixTimeSeconds() ?? Slot : Slot;

    /// <summary>True while the run is going on.</summary>
    [JsonIgnore]
    public bool IsRunning => State == RunState.Running;

    /// <summary>True for states that say the slot was handled and will not run again.</summary>
    [JsonIgnore]
    public bool IsFinal => State != RunState.Running;
}

/// <summary>The states of a <see cref="RunRecord"/>.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<RunState>))]
public enum RunState
{
    /// <summary>Claimed; the child is running.</summary>
    [JsonStringEnumMemberName("running")]
    Running,

    /// <summary>The child exited with code 0.</summary>
    [JsonStringEnumMemberName("succeeded")]
    Succeeded,

    /// <summary>The child exited with another code (after its retries).</summary>
    [JsonStringEnumMemberName("failed")]
    Failed,

    /// <summary>The child ran past the task's timeout and was stopped.</summary>
    [JsonStringEnumMemberName("timedOut")]
    TimedOut,

    /// <summary>The executor lost the lock while the child ran (session invalidated or renew failed), and stopped the child.</summary>
    [JsonStringEnumMemberName("lost")]
    Lost,

    /// <summary>
    /// The outcome is unknown: the run was still recorded running when its holder's session ended (the executor died, or
    /// was paused or cut off past its TTL), and another executor found it so. The holder's watchdog (or its systemd unit)
    /// stopped the child; whether it had finished first is not known. <c>finishedAt</c> is when it was found.
    /// </summary>
    [JsonStringEnumMemberName("abandoned")]
    Abandoned,

    /// <summary>The slot did not run because of a policy (<c>Forbid</c> and a run still going, or the task suspended).</summary>
    [JsonStringEnumMemberName("skipped")]
    Skipped,

    /// <summary>Nobody could fire the slot in time (all executors down, Consul unreachable, deadline passed).</summary>
    [JsonStringEnumMemberName("missed")]
    Missed,
}
