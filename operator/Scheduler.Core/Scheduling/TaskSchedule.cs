using System.Text.RegularExpressions;
using Cronos;
using Dtask.Core.Durations;

namespace Dtask.Core.Scheduling;

/// <summary>
/// A task's schedule, ready for slot math: the nominal slots (cron occurrences in the task's time zone, or
/// multiples of <c>every</c> since the Unix epoch) and each slot's deterministic jitter. Pure: every answer is a
/// function of the spec and the arguments, the same on every node.
/// </summary>
/// <remarks>
/// <para>Slots are UTC instants with whole seconds; <see cref="Slot"/> gives their ids.</para>
/// <para><c>every: P</c>: the slots are <c>k·P</c> seconds after 1970-01-01T00:00:00Z, whatever the node's start
/// time or the time zone (the zone only changes how slots are displayed).</para>
/// <para>Cron in a time zone with daylight saving time (Cronos' rules, verified by the tests):</para>
/// <list type="bullet">
/// <item>Spring forward: a local time that does not exist that day (02:30 in Europe/Berlin or America/New_York)
/// runs once, at the transition instant (03:00 local, the first instant after the gap).</item>
/// <item>Fall back: a local time that happens twice (02:30 in Berlin, 01:30 in New York) runs once, at the first
/// of the two instants (the daylight-time offset).</item>
/// <item>Fall back, for expressions whose minute or second fields repeat within the hour (<c>*/30 * * * *</c>,
/// <c>0 * * * *</c> …): they run in both offsets, so the repeated hour gets its slots twice; the nominal UTC
/// instants still differ, so the slot ids are distinct.</item>
/// </list>
/// <para>Day-of-month and day-of-week restricted together match when both match (Cronos' AND, unlike Vixie cron's OR):
/// <c>0 0 13 * 5</c> is Friday the 13th.</para>
/// </remarks>
public sealed partial class TaskSchedule
{
    /// <summary>Start of the window used to measure the shortest gap between cron occurrences (for the jitter bound).</summary>
    private static readonly DateTimeOffset GapWindowStart = new(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>How many cron occurrences the jitter bound looks at, at most.</summary>
    private const int GapWindowOccurrences = 400;

    private readonly CronExpression? _cron;
    private readonly long _everyTicks;

    private TaskSchedule(ScheduleSpec spec, CronNotation? notation, CronExpression? cron, TimeSpan? every, TimeZoneInfo zone, TimeSpan? shortestGap)
    {
        Spec = spec;
        Notation = notation;
        _cron = cron;
        Every = every;
        _everyTicks = every?.Ticks ?? 0;
        TimeZone = zone;
        Jitter = spec.Jitter ?? TimeSpan.Zero;
        ShortestGap = shortestGap;
    }

    /// <summary>The spec this schedule was made from.</summary>
    public ScheduleSpec Spec { get; }

    /// <summary>The parsed <c>spec.schedule</c> (with <c>H</c> resolved); <c>null</c> for <c>spec.every</c>.</summary>
    public CronNotation? Notation { get; }

    /// <summary>The period of an interval schedule (<c>spec.every</c> or <c>@every</c>); <c>null</c> for cron.</summary>
    public TimeSpan? Every { get; }

    /// <summary>The task's time zone (UTC unless <c>spec.timeZone</c> says otherwise).</summary>
    public TimeZoneInfo TimeZone { get; }

    /// <summary>The jitter bound; zero when there is none.</summary>
    public TimeSpan Jitter { get; }

    /// <summary>
    /// The period for <c>every</c>; for cron, the shortest gap between consecutive occurrences in a representative
    /// window (up to 400 occurrences within a year from 2025-01-01, longer for sparse schedules).
    /// <c>null</c> when a cron schedule fires at most once in that window.
    /// </summary>
    public TimeSpan? ShortestGap { get; }

    /// <summary>What the schedule is, for people: the cron expression with <c>H</c> and macros resolved, or <c>every 1m30s</c>.</summary>
    public string Expression => Every is { } every ? $"every {GoDuration.Format(every)}" : Notation!.Expression!;

    /// <summary>Every problem of <paramref name="spec"/> at once; empty when it is a valid schedule.</summary>
    public static IReadOnlyList<ScheduleError> Validate(ScheduleSpec spec) => Analyze(spec, out _);

    /// <summary>A schedule ready for math; throws <see cref="ArgumentException"/> naming the field when <see cref="Validate"/> would report errors.</summary>
    public static TaskSchedule Create(ScheduleSpec spec)
    {
        var errors = Analyze(spec, out var schedule);
        if (errors.Count > 0)
        {
            var message = string.Join("; ", errors.Select(e => $"spec.{e.Field}: {e.Reason}"));
            throw new ArgumentException(message, nameof(spec));
        }

        return schedule!;
    }

    /// <summary>The first nominal slot strictly after <paramref name="after"/> (UTC), or null when there is none.</summary>
    public DateTimeOffset? Next(DateTimeOffset after)
    {
        if (_cron is not null)
        {
            return _cron.GetNextOccurrence(after, TimeZone, inclusive: false)?.ToUniversalTime();
        }

        var index = FloorDiv(after.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks, _everyTicks) + 1;
        return FromEveryIndex(index);
    }

    /// <summary>The last nominal slot at or before <paramref name="atOrBefore"/> (UTC), or null when there is none.</summary>
    public DateTimeOffset? Previous(DateTimeOffset atOrBefore)
    {
        if (_cron is not null)
        {
            return PreviousCron(_cron, atOrBefore);
        }

        var index = FloorDiv(atOrBefore.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks, _everyTicks);
        return FromEveryIndex(index);
    }

    /// <summary>The nominal slots in <c>(<paramref name="after"/>, <paramref name="until"/>]</c>, oldest first.</summary>
    public IEnumerable<DateTimeOffset> Occurrences(DateTimeOffset after, DateTimeOffset until)
    {
        for (var t = Next(after); t is { } slot && slot <= until; t = Next(slot))
        {
            yield return slot;
        }
    }

    /// <summary>
    /// How many nominal slots lie in <c>(<paramref name="after"/>, <paramref name="until"/>]</c>, counting at most
    /// <paramref name="cap"/> + 1 for cron. Exact for <c>every</c> (arithmetic); for cron the result is exact when it
    /// is at most <paramref name="cap"/>, and <c>cap + 1</c> means "more than <paramref name="cap"/>".
    /// </summary>
    public long Count(DateTimeOffset after, DateTimeOffset until, int cap)
    {
        if (until <= after)
        {
            return 0;
        }

        if (_cron is null)
        {
            var epoch = DateTimeOffset.UnixEpoch.UtcTicks;
            return FloorDiv(until.UtcTicks - epoch, _everyTicks) - FloorDiv(after.UtcTicks - epoch, _everyTicks);
        }

        long count = 0;
        foreach (var unused in Occurrences(after, until))
        {
            if (++count > cap)
            {
                break;
            }
        }

        return count;
    }

    /// <summary>
    /// The delay of <paramref name="slot"/> in <c>[0, Jitter)</c>: derived from (hash key, slot id) with
    /// <see cref="NameHash"/>, so every node delays the same slot by the same amount. Whole milliseconds when the
    /// jitter bound is at least a millisecond; zero without jitter.
    /// </summary>
    public TimeSpan JitterOf(Slot slot)
    {
        if (Jitter <= TimeSpan.Zero)
        {
            return TimeSpan.Zero;
        }

        var ticks = NameHash.Pick(Spec.HashKey, "jitter\n" + slot.ToString(), Jitter.Ticks);
        if (Jitter.Ticks >= TimeSpan.TicksPerMillisecond)
        {
            ticks -= ticks % TimeSpan.TicksPerMillisecond;
        }

        return TimeSpan.FromTicks(ticks);
    }

    /// <summary>The instant <paramref name="slot"/> actually fires: its nominal instant plus <see cref="JitterOf"/>.</summary>
    public DateTimeOffset FireTime(Slot slot) => slot.Instant + JitterOf(slot);

    /// <summary>
    /// The last forward occurrence at or before <paramref name="atOrBefore"/>. Cronos' own backward search does not
    /// agree with its forward one inside a spring-forward gap (it answers the last instant before the gap, not the
    /// transition instant), so it only serves as a starting point two occurrences back, and the answer comes from
    /// the forward search — the one that defines the slots.
    /// </summary>
    private DateTimeOffset? PreviousCron(CronExpression cron, DateTimeOffset atOrBefore)
    {
        var hint = cron.GetPreviousOccurrence(atOrBefore, TimeZone, inclusive: true);
        if (hint is null)
        {
            return null;
        }

        var start = cron.GetPreviousOccurrence(hint.Value.AddTicks(-1), TimeZone, inclusive: true) ?? hint.Value;
        DateTimeOffset? best = null;
        for (var t = cron.GetNextOccurrence(start.AddTicks(-1), TimeZone, inclusive: false); t is { } x && x <= atOrBefore; t = cron.GetNextOccurrence(x, TimeZone, inclusive: false))
        {
            best = x;
        }

        return best?.ToUniversalTime();
    }

    private DateTimeOffset? FromEveryIndex(long index)
    {
        var maxIndex = (DateTimeOffset.MaxValue.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / _everyTicks;
        var minIndex = -(DateTimeOffset.UnixEpoch.UtcTicks / _everyTicks);
        return index > maxIndex || index < minIndex
            ? null
            : new DateTimeOffset(DateTimeOffset.UnixEpoch.UtcTicks + (index * _everyTicks), TimeSpan.Zero);
    }

    private static long FloorDiv(long a, long b) => (a / b) - ((a % b != 0 && (a < 0) != (b < 0)) ? 1 : 0);

    private static readonly string[] FieldOrder = ["schedule", "every", "timeZone", "jitter"];

    private static List<ScheduleError> Analyze(ScheduleSpec spec, out TaskSchedule? schedule)
    {
        var errors = Collect(spec, out schedule);
        return [.. errors.OrderBy(e => Array.IndexOf(FieldOrder, e.Field))];
    }

    private static List<ScheduleError> Collect(ScheduleSpec spec, out TaskSchedule? schedule)
    {
        ArgumentNullException.ThrowIfNull(spec);
        schedule = null;
        var errors = new List<ScheduleError>();

        var zone = ResolveZone(spec.TimeZone, errors);

        CronNotation? notation = null;
        CronExpression? cron = null;
        TimeSpan? every = null;
        var scheduleOk = false;
        if (spec.Cron is not null && spec.Every is not null)
        {
            errors.Add(new ScheduleError("every", "set either schedule or every, not both"));
        }
        else if (spec.Cron is null && spec.Every is null)
        {
            errors.Add(new ScheduleError("schedule", "is required unless every is set; write a cron expression such as '30 2 * * *', a macro such as @daily, or set every: 90s"));
        }
        else if (spec.Every is { } period)
        {
            scheduleOk = CheckPeriod("every", "", period, errors);
            every = period;
        }
        else if (!CronNotation.TryParse(spec.Cron, spec.HashKey ?? "", out notation, out var cronError))
        {
            errors.Add(new ScheduleError("schedule", cronError!));
        }
        else if (notation!.Every is { } atEvery)
        {
            scheduleOk = CheckPeriod("schedule", "@every: ", atEvery, errors);
            every = atEvery;
        }
        else
        {
            cron = ParseCron(notation, errors);
            scheduleOk = cron is not null;
        }

        var jitterOk = true;
        if (spec.Jitter is { } jitter && jitter < TimeSpan.Zero)
        {
            errors.Add(new ScheduleError("jitter", $"'{GoDuration.Format(jitter)}' is negative; write a delay bound such as 30s, or leave it out"));
            jitterOk = false;
        }

        if (!scheduleOk || zone is null)
        {
            return errors;
        }

        TimeSpan? gap = every;
        if (cron is not null)
        {
            if (!TryShortestGap(cron, zone, out gap))
            {
                errors.Add(new ScheduleError("schedule", $"'{spec.Cron}' never matches a date (such as February 30), so it would never run"));
                return errors;
            }
        }

        if (jitterOk && spec.Jitter is { } bound && bound > TimeSpan.Zero && gap is { } shortest && bound >= shortest)
        {
            var what = every is not null ? "the period" : "the shortest gap between two runs of the schedule";
            errors.Add(new ScheduleError("jitter", $"'{GoDuration.Format(bound)}' must be shorter than {what} ({GoDuration.Format(shortest)}), or two slots could fire out of order"));
        }

        if (errors.Count == 0)
        {
            schedule = new TaskSchedule(spec, notation, cron, every, zone, gap);
        }

        return errors;
    }

    private static bool CheckPeriod(string field, string prefix, TimeSpan period, List<ScheduleError> errors)
    {
        if (period < TimeSpan.FromSeconds(1))
        {
            errors.Add(new ScheduleError(field, $"{prefix}'{GoDuration.Format(period)}' is too short; the period must be at least 1s"));
            return false;
        }

        if (period.Ticks % TimeSpan.TicksPerSecond != 0)
        {
            errors.Add(new ScheduleError(field, $"{prefix}'{GoDuration.Format(period)}' is not a whole number of seconds; slots are Unix seconds, so write for example {GoDuration.Format(TimeSpan.FromSeconds(Math.Round(period.TotalSeconds)))}"));
            return false;
        }

        return true;
    }

    private static CronExpression? ParseCron(CronNotation notation, List<ScheduleError> errors)
    {
        var format = notation.IncludesSeconds ? CronFormat.IncludeSeconds : CronFormat.Standard;
        try
        {
            return CronExpression.Parse(notation.Expression!, format);
        }
        catch (CronFormatException e)
        {
            const string genericPrefix = "The given cron expression has an invalid format. ";
            var reason = e.Message.StartsWith(genericPrefix, StringComparison.Ordinal) ? e.Message[genericPrefix.Length..] : e.Message;
            errors.Add(new ScheduleError("schedule", $"'{notation.Text.Trim()}' is not a valid cron expression: {reason}"));
            return null;
        }
    }

    private static bool TryShortestGap(CronExpression cron, TimeZoneInfo zone, out TimeSpan? gap)
    {
        gap = null;
        var first = cron.GetNextOccurrence(GapWindowStart, zone, inclusive: true);
        if (first is null)
        {
            return false;
        }

        var previous = first.Value;
        var oneYear = GapWindowStart.AddYears(1);
        var hardStop = GapWindowStart.AddYears(9);
        for (var i = 0; i < GapWindowOccurrences; i++)
        {
            var next = cron.GetNextOccurrence(previous, zone, inclusive: false);
            if (next is null || next.Value > hardStop || (next.Value > oneYear && gap is not null))
            {
                break;
            }

            var between = next.Value - previous;
            if (gap is null || between < gap)
            {
                gap = between;
            }

            previous = next.Value;
        }

        return true;
    }

    private static TimeZoneInfo? ResolveZone(string? id, List<ScheduleError> errors)
    {
        if (id is null)
        {
            return TimeZoneInfo.Utc;
        }

        if (string.IsNullOrWhiteSpace(id))
        {
            errors.Add(new ScheduleError("timeZone", "is empty; leave it out for UTC or write an IANA zone such as Europe/Berlin"));
            return null;
        }

        if (!ZoneId().IsMatch(id))
        {
            errors.Add(new ScheduleError("timeZone", $"'{id}' is not an IANA time zone name; write one such as Europe/Berlin or America/New_York"));
            return null;
        }

        try
        {
            return TimeZoneInfo.FindSystemTimeZoneById(id);
        }
        catch (Exception e) when (e is TimeZoneNotFoundException or InvalidTimeZoneException or System.Security.SecurityException or IOException or UnauthorizedAccessException)
        {
            errors.Add(new ScheduleError("timeZone", $"'{id}' is not a known IANA time zone; write one such as Europe/Berlin or America/New_York (the zone database of this machine is used)"));
            return null;
        }
    }

    [GeneratedRegex(@"^[A-Za-z][A-Za-z0-9_+\-]*(?:/[A-Za-z0-9_+\-]+)*$", RegexOptions.CultureInvariant)]
    private static partial Regex ZoneId();
}
