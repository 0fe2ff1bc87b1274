namespace Dtask.Executor.Notifications;

/// <summary>
/// Receives the events of a task's life on this node. Implementations return at once and never throw: they
/// queue or send in the background, so a notification can neither delay nor fail a run. Disposing one flushes
/// what is still queued, within a deadline.
/// </summary>
/// <remarks>
/// The executor calls, for one claimed slot: <see cref="RunStarted"/> when the child has started; then either
/// <see cref="RunFinished"/> (the child exited or timed out) or <see cref="LockLost"/> (the lock was lost and the
/// child stopped) — not both. <see cref="SlotMissed"/> is called by whichever node records a missed slot.
/// </remarks>
public interface IRunNotifier : IAsyncDisposable
{
    /// <summary>The child process of a claimed run has started.</summary>
    /// <param name="run">The run.</param>
    void RunStarted(RunContext run);

    /// <summary>The child process exited, or was stopped by its timeout.</summary>
    /// <param name="run">The run.</param>
    /// <param name="outcome">How it ended.</param>
    void RunFinished(RunContext run, RunOutcome outcome);

    /// <summary>A slot was recorded as missed.</summary>
    /// <param name="slot">The missed slot.</param>
    void SlotMissed(MissedSlot slot);

    /// <summary>The run's lock was lost while the child ran; the child was stopped.</summary>
    /// <param name="run">The run.</param>
    /// <param name="reason">Why the lock is considered lost (session invalidated, renew failed, ...).</param>
    void LockLost(RunContext run, string reason);
}

/// <summary>The events a task can ask Slack messages for, as named in <c>notify.slack.on</c>.</summary>
public enum NotificationEvent
{
    /// <summary><c>start</c>: the child started.</summary>
    Start,

    /// <summary><c>success</c>: the child exited with code 0.</summary>
    Success,

    /// <summary><c>failure</c>: the child failed or timed out.</summary>
    Failure,

    /// <summary><c>missed</c>: a slot was missed.</summary>
    Missed,

    /// <summary><c>lost</c>: the lock was lost during a run.</summary>
    Lost,
}

/// <summary>Parses and prints <see cref="NotificationEvent"/> names as the manifest spells them.</summary>
public static class NotificationEventNames
{
    /// <summary>Every event.</summary>
    public static IReadOnlySet<NotificationEvent> All { get; } = new HashSet<NotificationEvent>(Enum.GetValues<NotificationEvent>());

    /// <summary>What a task gets when nobody said otherwise: failure, missed and lost.</summary>
    public static IReadOnlySet<NotificationEvent> Default { get; } =
        new HashSet<NotificationEvent> { NotificationEvent.Failure, NotificationEvent.Missed, NotificationEvent.Lost };

    /// <summary>The manifest's name of an event (<c>start</c>, <c>success</c>, ...).</summary>
    /// <param name="notificationEvent">The event.</param>
    /// <returns>The lower-case name.</returns>
    public static string Name(NotificationEvent notificationEvent) => notificationEvent switch
    {
        NotificationEvent.Start => "start",
        NotificationEvent.Success => "success",
        NotificationEvent.Failure => "failure",
        NotificationEvent.Missed => "missed",
        NotificationEvent.Lost => "lost",
        _ => throw new ArgumentOutOfRangeException(nameof(notificationEvent)),
    };

    /// <summary>Parses one name, case-insensitively.</summary>
    /// <param name="name">An event name.</param>
    /// <param name="notificationEvent">The event, when the name is known.</param>
    /// <returns>Whether the name is known.</returns>
    public static bool TryParse(string name, out NotificationEvent notificationEvent)
    {
        ArgumentNullException.ThrowIfNull(name);
        foreach (var candidate in Enum.GetValues<NotificationEvent>())
        {
            if (string.Equals(Name(candidate), name.Trim(), StringComparison.OrdinalIgnoreCase))
            {
                notificationEvent = candidate;
                return true;
            }
        }

        notificationEvent = default;
        return false;
    }

    /// <summary>Parses a comma- or space-separated list such as <c>start,failure</c>; <c>all</c> means every event.</summary>
    /// <param name="list">The list.</param>
    /// <returns>The set of events.</returns>
    /// <exception cref="FormatException">A name is not an event.</exception>
    public static IReadOnlySet<NotificationEvent> ParseList(string list)
    {
        ArgumentNullException.ThrowIfNull(list);
        var set = new HashSet<NotificationEvent>();
        foreach (var name in list.Split([',', ' ', ';'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (string.Equals(name, "all", StringComparison.OrdinalIgnoreCase))
            {
                set.UnionWith(All);
            }
            else if (TryParse(name, out var parsed))
            {
                set.Add(parsed);
            }
            else
            {
                throw new FormatException($"'{name}' is not a notification event (start, success, failure, missed, lost, all)");
            }
        }

        return set;
    }
}
