using System.Globalization;
using Dtask.Cli.Commands;
using Dtask.Cli.Commands.Tasks;
using Dtask.Core.Durations;
using Dtask.Core.Model;
using Dtask.Core.Scheduling;
using Dtask.Core.State;
using Dtask.Operator.Status;

namespace Dtask.Cli.Ui;

/// <summary>The last run of a task in the tasks view.</summary>
internal sealed record UiLastRun(string State, string Node, DateTimeOffset? Slot, bool Manual, DateTimeOffset? StartedAt, DateTimeOffset? FinishedAt, long? DurationMs, string? Reason);

/// <summary>One row of the tasks view.</summary>
internal sealed record UiTaskRow(string Namespace, string Name, string Owner, string Schedule, string? ScheduleWords, string TimeZone, bool Suspended,
    DateTimeOffset? NextFire, string? NextFireZone, UiLastRun? LastRun, bool Running, string? LockNode, IReadOnlyList<string> Problems);

/// <summary>One page of the tasks view.</summary>
internal sealed record UiTaskPage(int Total, int Offset, int Limit, IReadOnlyList<UiTaskRow> Items, IReadOnlyList<string> Namespaces, bool Loading, string? Error);

/// <summary>One mark of the timeline: a run, or a slot that was skipped, missed or abandoned.</summary>
internal sealed record UiRunMark(string Task, DateTimeOffset? Slot, bool Manual, string Node, string State, string? Reason, DateTimeOffset? StartedAt,
    DateTimeOffset? FinishedAt, int? ExitCode, long? DelayMs);

/// <summary>The timeline view: marks between <paramref name="From"/> and <paramref name="To"/>, rows by node.</summary>
internal sealed record UiTimeline(DateTimeOffset From, DateTimeOffset To, IReadOnlyList<string> Nodes, IReadOnlyList<UiRunMark> Runs, bool Truncated, string? Error);

/// <summary>One live executor in the nodes view.</summary>
internal sealed record UiNode(string Node, string State, IReadOnlyDictionary<string, string> Labels, string Version, DateTimeOffset StartedAt,
    IReadOnlyList<string> Running, double? Skew, DateTimeOffset? LastSeen);

/// <summary>The nodes view.</summary>
internal sealed record UiNodes(IReadOnlyList<UiNode> Items, string? Error);

/// <summary>A label and a value of the task view's spec list.</summary>
internal sealed record UiField(string Label, string Value);

/// <summary>One run in the task view's history, with its output tail.</summary>
internal sealed record UiRun(DateTimeOffset? Slot, bool Manual, long? TriggerIndex, string Node, string State, string? Reason, int Attempt,
    DateTimeOffset? StartedAt, DateTimeOffset? FinishedAt, long? DurationMs, int? ExitCode, string? Output);

/// <summary>One of the next slots (as <c>dtask schedule</c> prints them).</summary>
internal sealed record UiSlot(string Utc, string Local, long Slot, string? Fires);

/// <summary>The task view.</summary>
internal sealed record UiTaskDetail(string Namespace, string Name, string Owner, long Generation, string SpecHash, bool Signed, bool Suspended,
    string Schedule, string? ScheduleWords, string TimeZone, IReadOnlyList<UiField> Spec, IReadOnlyList<UiField> Status, string Lock,
    IReadOnlyList<string> Problems, IReadOnlyList<UiSlot> NextSlots, IReadOnlyList<UiRun> History, IReadOnlyList<UiField> Pending);

/// <summary>Builds the views' documents from a <see cref="UiSnapshot"/>. Nothing secret leaves here: env values and notification settings beyond their kind, channel and events are left out.</summary>
internal static class UiViews
{
    /// <summary>How many history entries the task view shows.</summary>
    public const int HistoryShown = 25;

    /// <summary>The most marks one timeline answer carries (newest first).</summary>
    public const int MaxMarks = 5000;

    public static UiTaskPage Tasks(UiSnapshot snapshot, string? ns, string? query, int offset, int limit, DateTimeOffset now)
    {
        var matching = snapshot.Tasks.Where(t => Matches(t, ns, query)).ToList();
        var offsetUsed = Math.Clamp(offset, 0, Math.Max(0, matching.Count - 1));
        var items = matching.Skip(offsetUsed).Take(limit).Select(t => Row(t, snapshot, now)).ToList();
        return new UiTaskPage(matching.Count, offsetUsed, limit, items, snapshot.Namespaces, snapshot.Loading, snapshot.Error);
    }

    private static bool Matches(UiTask task, string? ns, string? query) =>
        (string.IsNullOrEmpty(ns) || task.Observation.Namespace == ns)
        && (string.IsNullOrEmpty(query) || task.Observation.Key.Contains(query, StringComparison.OrdinalIgnoreCase));

    private static UiTaskRow Row(UiTask task, UiSnapshot snapshot, DateTimeOffset now)
    {
        var o = task.Observation;
        var envelope = o.Envelope!;
        var status = o.StatusAt(now);
        var last = LastRecord(o);
        var next = status.NextScheduleTime;
        return new UiTaskRow(o.Namespace, o.Name, envelope.Owner.ToString(), GetCommand.ScheduleText(envelope.Spec), Words(envelope.Spec),
            task.Schedule?.TimeZone.Id ?? envelope.Spec.TimeZone ?? "UTC", envelope.Spec.IsSuspended, next,
            next is { } n && task.Schedule is { } s ? Zoned(n, s.TimeZone) : null,
            last is null ? null : new UiLastRun(Word(last.State), last.Node, last.IsManual ? null : SlotTime(last.Slot), last.IsManual, last.StartedAt,
                last.FinishedAt, DurationMs(last), last.Reason),
            o.Current?.IsRunning == true, LockNode(o, snapshot), Problems(o, status));
    }

    private static RunRecord? LastRecord(TaskObservation o)
    {
        var newest = o.History.Count > 0 ? o.History[^1] : null;
        return o.Current is { } current && (newest is null || current.OrderKey >= newest.OrderKey || current.IsRunning) ? current : newest;
    }

    private static string? LockNode(TaskObservation o, UiSnapshot snapshot) =>
        o.LockSession is { } session ? snapshot.Nodes.FirstOrDefault(n => n.Session == session)?.Node ?? "(unregistered session)" : null;

    private static List<string> Problems(TaskObservation o, ScheduledTaskStatus status) =>
        [.. (status.Conditions ?? []).Where(c => c.Status == "False").Select(c => $"{c.Type}: {c.Reason}{(string.IsNullOrEmpty(c.Message) ? "" : " — " + c.Message)}")];

    public static UiTimeline Timeline(UiSnapshot snapshot, TimeSpan range, string? ns, string? query, DateTimeOffset now)
    {
        var from = now - range;
        var marks = new List<UiRunMark>();
        foreach (var task in snapshot.Tasks.Where(t => Matches(t, ns, query)))
        {
            var o = task.Observation;
            IEnumerable<RunRecord> records = o.History;
            if (o.Current is { } current && !o.History.Any(h => Same(h, current)))
            {
                records = records.Append(current);
            }

            foreach (var r in records)
            {
                var at = r.IsManual ? r.StartedAt : SlotTime(r.Slot);
                if (at is not { } when || when < from || when > now + TimeSpan.FromMinutes(1))
                {
                    continue;
                }

                long? delay = null;
                if (!r.IsManual && r.StartedAt is { } started && r.State is not (RunState.Missed or RunState.Skipped) && task.Schedule is { } schedule)
                {
                    delay = (long)Math.Round((started - schedule.FireTime(new Slot(r.Slot))).TotalMilliseconds);
                }

                marks.Add(new UiRunMark(o.Key, r.IsManual ? null : SlotTime(r.Slot), r.IsManual, r.Node, Word(r.State), r.Reason, r.StartedAt, r.FinishedAt, r.ExitCode, delay));
            }
        }

        var truncated = marks.Count > MaxMarks;
        var shown = marks.OrderByDescending(m => m.Slot ?? m.StartedAt).Take(MaxMarks).ToList();
        var nodes = snapshot.Nodes.Select(n => n.Node).Concat(shown.Select(m => m.Node)).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        return new UiTimeline(from, now, nodes, shown, truncated, snapshot.Error);
    }

    private static bool Same(RunRecord a, RunRecord b) => a.IsManual || b.IsManual ? a.RunId == b.RunId : a.Slot == b.Slot;

    public static UiNodes Nodes(UiSnapshot snapshot) =>
        new([.. snapshot.Nodes.Select(n => new UiNode(n.Node, n.State, n.Labels, n.Version, n.StartedAt, n.Running, n.Skew,
            snapshot.LastSeen.TryGetValue(n.Node, out var seen) ? seen : null))], snapshot.Error);

    /// <summary>The task view from a fresh read of the task (with output tails), the snapshot's nodes and its pending requests.</summary>
    public static UiTaskDetail Task(TaskObservation o, UiSnapshot snapshot, IReadOnlyList<UiField> pending, DateTimeOffset now)
    {
        var envelope = o.Envelope!;
        var spec = envelope.Spec;
        var status = o.StatusAt(now);
        TaskSchedule? schedule = null;
        try
        {
            schedule = TaskSchedule.Create(spec.ToScheduleSpec(o.Key));
        }
        catch (ArgumentException)
        {
            // No slots; the conditions name the problem.
        }

        var records = o.History.AsEnumerable();
        if (o.Current is { } current && !o.History.Any(h => Same(h, current) && !current.IsRunning))
        {
            records = records.Where(h => !Same(h, current)).Append(current);
        }

        var history = records.OrderByDescending(r => r.OrderKey).ThenByDescending(r => r.IsRunning).Take(HistoryShown).Select(r => new UiRun(
            r.IsManual ? null : SlotTime(r.Slot), r.IsManual, r.TriggerIndex, r.Node, Word(r.State), r.Reason, r.Attempt, r.StartedAt, r.FinishedAt,
            DurationMs(r), r.ExitCode, r.OutputTail)).ToList();
        var slots = schedule is null ? [] : new ScheduleCommand.SchedulePreview(schedule, o.Key).Rows(now, 10)
            .Select(row => new UiSlot(row.Utc, row.Local, row.Slot.Id, row.Fires)).ToList();
        var lockText = o.LockSession is not { } session
            ? "free"
            : snapshot.Nodes.FirstOrDefault(n => n.Session == session) is { } node
                ? $"held by {node.Node} (session {session})"
                : $"held by session {session} (no executor registered)";
        List<UiField> statusFields =
        [
            new("Last schedule", Instant(status.LastScheduleTime)),
            new("Last successful", Instant(status.LastSuccessfulTime)),
            new("Next schedule", status.NextScheduleTime is { } next
                ? $"{Instant(next)}" + (schedule is null ? "" : $" ({Zoned(next, schedule.TimeZone)})")
                : "<none>"),
        ];
        statusFields.AddRange((status.Conditions ?? []).Select(c => new UiField(c.Type ?? "", $"{c.Status} {c.Reason}{(string.IsNullOrEmpty(c.Message) ? "" : ": " + c.Message)}")));
        return new UiTaskDetail(o.Namespace, o.Name, envelope.Owner.ToString(), envelope.Generation, envelope.SpecHash, envelope.Signature is not null,
            spec.IsSuspended, GetCommand.ScheduleText(spec), Words(spec), schedule?.TimeZone.Id ?? spec.TimeZone ?? "UTC", SpecFields(spec), statusFields,
            lockText, Problems(o, status), slots, history, pending);
    }

    /// <summary>The spec as label/value pairs, without secrets: env values, files' contents and notification webhooks never appear.</summary>
    public static IReadOnlyList<UiField> SpecFields(ScheduledTaskSpec spec)
    {
        var fields = new List<UiField> { new("Schedule", GetCommand.ScheduleText(spec) + (spec.TimeZone is { } zone ? $" ({zone})" : " (UTC)")) };
        void Add(string label, string? value)
        {
            if (!string.IsNullOrEmpty(value))
            {
                fields.Add(new UiField(label, value));
            }
        }

        Add("Jitter", spec.Jitter);
        Add(spec.Shell is null ? "Command" : "Shell", spec.Shell ?? string.Join(' ', spec.Command ?? []));
        Add("Working dir", spec.WorkingDir);
        Add("Environment", spec.Env is { Count: > 0 } env
            ? string.Join(", ", env.Select(e => e.ValueFrom?.File is not null ? $"{e.Name} (from a file)" : $"{e.Name} (value hidden)"))
            : null);
        Add("Timeout", spec.Timeout);
        Add("Concurrency policy", spec.EffectiveConcurrencyPolicy.ToString());
        Add("Missed run policy", spec.EffectiveMissedRunPolicy + (spec.StartingDeadline is { } deadline ? $" (starting deadline {deadline})" : ""));
        Add("Retries", spec.Retries is { } retries ? $"{retries.EffectiveLimit.ToString(CultureInfo.InvariantCulture)} (backoff {GoDuration.Format(retries.BackoffDuration)})" : null);
        Add("Placement", spec.EffectivePlacement.ToString());
        Add("Node selector", spec.NodeSelector is { Count: > 0 } selector
            ? string.Join(",", selector.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key}={p.Value}"))
            : null);
        Add("History kept", spec.History?.ToString(CultureInfo.InvariantCulture));
        var notify = new List<string>();
        if (spec.Notify?.Slack is { } slack)
        {
            notify.Add($"Slack{(slack.Channel is { } channel ? " " + channel : "")} on {string.Join(", ", slack.EffectiveEvents.Select(e => e.ToString().ToLowerInvariant()))}");
        }

        if (spec.Notify?.Datadog is { } datadog)
        {
            notify.Add("DataDog" + (datadog.Tags is { Count: > 0 } tags ? $" (tags {string.Join(", ", tags)})" : ""));
        }

        Add("Notify", notify.Count > 0 ? string.Join("; ", notify) : null);
        return fields;
    }

    /// <summary>The schedule in words for the common shapes (every D, every minute, every N minutes, hourly, daily, weekly); null otherwise.</summary>
    public static string? Words(ScheduledTaskSpec spec)
    {
        if (spec.EveryDuration is { } every)
        {
            return "every " + GoDuration.Format(every);
        }

        var cron = spec.Schedule?.Trim();
        switch (cron)
        {
            case null: return null;
            case "@hourly": return "every hour, on the hour";
            case "@daily" or "@midnight": return "every day at midnight";
            case "@weekly": return "every Sunday at midnight";
            case "@monthly": return "on the first of every month at midnight";
            case "@yearly" or "@annually": return "every 1 January at midnight";
            default: break;
        }

        var f = cron.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (f.Length == 6)
        {
            if (f[1..].All(x => x == "*"))
            {
                return f[0] == "*" ? "every second" : f[0].StartsWith("*/", StringComparison.Ordinal) ? $"every {f[0][2..]} seconds" : null;
            }

            if (f[0] != "0")
            {
                return null;
            }

            f = f[1..];
        }

        if (f.Length != 5 || f[2] != "*" || f[3] != "*")
        {
            return null;
        }

        static bool Number(string s) => s.Length is > 0 and <= 2 && s.All(char.IsAsciiDigit);
        string[] days = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
        if (f[4] == "*")
        {
            if (f[0] == "*" && f[1] == "*")
            {
                return "every minute";
            }

            if (f[0].StartsWith("*/", StringComparison.Ordinal) && Number(f[0][2..]) && f[1] == "*")
            {
                return $"every {f[0][2..]} minutes";
            }

            if (Number(f[0]) && f[1] == "*")
            {
                return $"every hour at :{int.Parse(f[0], CultureInfo.InvariantCulture):00}";
            }

            if (Number(f[0]) && Number(f[1]))
            {
                return $"every day at {int.Parse(f[1], CultureInfo.InvariantCulture):00}:{int.Parse(f[0], CultureInfo.InvariantCulture):00}";
            }

            if (f[0] == "H" && f[1] == "*")
            {
                return "every hour (minute hashed)";
            }

            return f[0] == "H" && f[1] == "H" ? "every day (time hashed)" : null;
        }

        return Number(f[0]) && Number(f[1]) && f[4].Length == 1 && char.IsAsciiDigit(f[4][0]) && f[4][0] <= '7'
            ? $"every {days[f[4][0] - '0']} at {int.Parse(f[1], CultureInfo.InvariantCulture):00}:{int.Parse(f[0], CultureInfo.InvariantCulture):00}"
            : null;
    }

    private static DateTimeOffset? SlotTime(long slot) => slot > 0 ? DateTimeOffset.FromUnixTimeSeconds(slot) : null;

    private static long? DurationMs(RunRecord r) =>
        r.StartedAt is { } started && r.FinishedAt is { } finished && r.State is not (RunState.Skipped or RunState.Missed)
            ? (long)Math.Round((finished - started).TotalMilliseconds)
            : null;

    /// <summary>The word of a run state (<c>succeeded</c>, <c>timedOut</c>…), as <c>dtask history</c> prints it.</summary>
    public static string Word(RunState state) => TaskStatusBuilder.ResultWord(state);

    private static string Instant(DateTimeOffset? instant) => TableOutput.Instant(instant);

    private static string Zoned(DateTimeOffset instant, TimeZoneInfo zone)
    {
        var local = TimeZoneInfo.ConvertTime(instant, zone);
        var offset = local.Offset;
        var sign = offset < TimeSpan.Zero ? "-" : "+";
        return $"{local.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)} {(zone == TimeZoneInfo.Utc ? "UTC" : zone.Id + " " + sign + offset.Duration().ToString("hh\\:mm", CultureInfo.InvariantCulture))}";
    }
}
