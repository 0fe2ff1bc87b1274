using Dtask.Core.Scheduling;

namespace Dtask.Core.Tests.Scheduling;

public sealed class ScheduleValidationTests
{
    private const string Key = "default/backup";

    private static ScheduleSpec Cron(string cron, string? zone = null, TimeSpan? jitter = null) => new(cron, null, zone, jitter, Key);

    private static ScheduleSpec Every(TimeSpan every, TimeSpan? jitter = null, string? zone = null) => new(null, every, zone, jitter, Key);

    private static readonly Dictionary<string, (ScheduleSpec Spec, string Field, string Reason)> Errors = new()
    {
        ["hour out of range"] = (Cron("0 25 * * *"), "schedule", "field 2 (hour) '25' is out of range 0-23"),
        ["minute out of range"] = (Cron("61 * * * *"), "schedule", "field 1 (minute) '61' is out of range 0-59"),
        ["six fields, hour is field 3"] = (Cron("0 0 25 * * *"), "schedule", "field 3 (hour) '25' is out of range 0-23"),
        ["second out of range"] = (Cron("60 0 0 * * *"), "schedule", "field 1 (second) '60' is out of range 0-59"),
        ["day of month zero"] = (Cron("0 0 0 * *"), "schedule", "field 3 (day-of-month) '0' is out of range 1-31"),
        ["month 13"] = (Cron("0 0 1 13 *"), "schedule", "field 4 (month) '13' is out of range 1-12"),
        ["day of week 8"] = (Cron("0 0 * * 8"), "schedule", "field 5 (day-of-week) '8' is out of range 0-7"),
        ["end of a range out of range"] = (Cron("0 9-25 * * *"), "schedule", "field 2 (hour) '25' is out of range 0-23"),
        ["unknown month name"] = (Cron("0 0 1 FOO *"), "schedule", "field 4 (month) 'FOO' is not a number 1-12 or a name JAN-DEC, a range (a-b), a step (*/n), a list (a,b) or H"),
        ["letters in minute"] = (Cron("x * * * *"), "schedule", "field 1 (minute) 'x' is not a number 0-59, a range (a-b), a step (*/n), a list (a,b) or H"),
        ["four fields"] = (Cron("* * * *"), "schedule", "has 4 fields; write 5 (minute hour day-of-month month day-of-week) or 6 (second minute hour day-of-month month day-of-week)"),
        ["seven fields"] = (Cron("0 0 0 * * * 2026"), "schedule", "has 7 fields; write 5 (minute hour day-of-month month day-of-week) or 6 (second minute hour day-of-month month day-of-week)"),
        ["step zero"] = (Cron("*/0 * * * *"), "schedule", "field 1 (minute) step '0' in '*/0' must be between 1 and 59"),
        ["backwards range"] = (Cron("0 22-2 * * *"), "schedule", "field 2 (hour) range '22-2' goes backwards; split it, for example 22-23,0-2"),
        ["empty list item"] = (Cron("0,,30 * * * *"), "schedule", "field 1 (minute) '0,,30' has an empty list item"),
        ["question mark outside day fields"] = (Cron("? * * * *"), "schedule", "field 1 (minute) '?' is only allowed in day-of-month and day-of-week"),
        ["malformed H"] = (Cron("H(5) * * * *"), "schedule", "field 1 (minute) 'H(5)' is not a valid H form; write H, H/n, H(a-b) or H(a-b)/n"),
        ["H range out of range"] = (Cron("H(0-70) * * * *"), "schedule", "field 1 (minute) '70' is out of range 0-59"),
        ["H range backwards"] = (Cron("0 H(20-10) * * *"), "schedule", "field 2 (hour) range '20-10' in 'H(20-10)' goes backwards"),
        ["H step too large"] = (Cron("H/90 * * * *"), "schedule", "field 1 (minute) step '90' in 'H/90' must be between 1 and 59"),
        ["unknown macro"] = (Cron("@fortnightly"), "schedule", "'@fortnightly' is not a known macro; use @hourly, @daily, @midnight, @weekly, @monthly, @yearly, @annually or @every <duration>"),
        ["empty schedule"] = (Cron("  "), "schedule", "is empty; write a cron expression such as '30 2 * * *', a macro such as @daily, or @every 90s"),
        ["never matches a date"] = (Cron("0 0 30 2 *"), "schedule", "'0 0 30 2 *' never matches a date (such as February 30), so it would never run"),
        ["rejected by Cronos, its reason kept"] = (Cron("0 0 1,L * *"), "schedule", "'0 0 1,L * *' is not a valid cron expression: Days of month: Value must be a number between 1 and 31 (all inclusive)."),
        ["@every without a duration"] = (Cron("@every"), "schedule", "@every: duration is empty; write a duration such as 90s, 5m or 1h30m"),
        ["@every not whole seconds"] = (Cron("@every 1500ms"), "schedule", "@every: '1.5s' is not a whole number of seconds; slots are Unix seconds, so write for example 2s"),
        ["@every too short"] = (Cron("@every 500ms"), "schedule", "@every: '500ms' is too short; the period must be at least 1s"),
        ["every zero"] = (Every(TimeSpan.Zero), "every", "'0s' is too short; the period must be at least 1s"),
        ["every negative"] = (Every(TimeSpan.FromSeconds(-5)), "every", "'-5s' is too short; the period must be at least 1s"),
        ["every not whole seconds"] = (Every(TimeSpan.FromMilliseconds(90_500)), "every", "'1m30.5s' is not a whole number of seconds; slots are Unix seconds, so write for example 1m30s"),
        ["both schedule and every"] = (new ScheduleSpec("@daily", TimeSpan.FromHours(1), null, null, Key), "every", "set either schedule or every, not both"),
        ["neither schedule nor every"] = (new ScheduleSpec(null, null, null, null, Key), "schedule", "is required unless every is set; write a cron expression such as '30 2 * * *', a macro such as @daily, or set every: 90s"),
        ["unknown time zone"] = (Cron("@daily", "Mars/Olympus"), "timeZone", "'Mars/Olympus' is not a known IANA time zone; write one such as Europe/Berlin or America/New_York (the zone database of this machine is used)"),
        ["time zone that is a path"] = (Cron("@daily", "../../etc/passwd"), "timeZone", "'../../etc/passwd' is not an IANA time zone name; write one such as Europe/Berlin or America/New_York"),
        ["empty time zone"] = (Cron("@daily", ""), "timeZone", "is empty; leave it out for UTC or write an IANA zone such as Europe/Berlin"),
        ["negative jitter"] = (Every(TimeSpan.FromMinutes(5), TimeSpan.FromSeconds(-1)), "jitter", "'-1s' is negative; write a delay bound such as 30s, or leave it out"),
        ["jitter as long as every"] = (Every(TimeSpan.FromMinutes(5), TimeSpan.FromMinutes(5)), "jitter", "'5m' must be shorter than the period (5m), or two slots could fire out of order"),
        ["jitter as long as the cron gap"] = (Cron("*/5 * * * *", jitter: TimeSpan.FromMinutes(5)), "jitter", "'5m' must be shorter than the shortest gap between two runs of the schedule (5m), or two slots could fire out of order"),
        ["jitter longer than the smallest of uneven cron gaps"] = (Cron("0 0,1,12 * * *", jitter: TimeSpan.FromMinutes(90)), "jitter", "'1h30m' must be shorter than the shortest gap between two runs of the schedule (1h), or two slots could fire out of order"),
    };

    public static TheoryData<string> ErrorCases => new(Errors.Keys);

    [Theory]
    [MemberData(nameof(ErrorCases))]
    public void Invalid_schedules_name_the_field_and_the_problem(string name)
    {
        var (spec, field, reason) = Errors[name];

        var errors = TaskSchedule.Validate(spec);

        Assert.Equal([new ScheduleError(field, reason)], errors);
        var thrown = Assert.Throws<ArgumentException>(() => TaskSchedule.Create(spec));
        Assert.Contains($"spec.{field}: {reason}", thrown.Message, StringComparison.Ordinal);
    }

    public static TheoryData<string> ValidCases => new(
        "0 0 * * *", "*/15 9-17 * * MON-FRI", "0 0 1 JAN,JUL *", "30 2 * * *", "0 0 L * *", "0 0 L-3 * *", "0 0 15W * *",
        "0 0 * * 5L", "0 0 * * FRI#3", "0 0 ? * 1", "5/15 * * * *", "0 0 * * 7", "*/20 * * * * *", "H H * * *", "H/15 * * * *",
        "H(0-29) H(1-5) * * *", "H(0-29)/10 * * * *", "0 0 H * *", "0 0 * * H", "@hourly", "@DAILY", "@every 90s", "@every 1h30m");

    [Theory]
    [MemberData(nameof(ValidCases))]
    public void Valid_schedules_have_no_errors(string cron)
    {
        Assert.Empty(TaskSchedule.Validate(new ScheduleSpec(cron, null, "Europe/Berlin", null, Key)));
    }

    [Fact]
    public void Every_problem_is_reported_at_once()
    {
        var errors = TaskSchedule.Validate(new ScheduleSpec("0 25 * * *", null, "Nowhere/Town", TimeSpan.FromSeconds(-1), Key));

        Assert.Equal(["schedule", "timeZone", "jitter"], errors.Select(e => e.Field));
    }

    [Fact]
    public void Jitter_just_under_the_gap_is_accepted()
    {
        Assert.Empty(TaskSchedule.Validate(Cron("*/5 * * * *", jitter: TimeSpan.FromSeconds(299))));
        Assert.Empty(TaskSchedule.Validate(Every(TimeSpan.FromSeconds(90), TimeSpan.FromSeconds(89))));
    }

    [Fact]
    public void Iana_zones_come_from_the_system_zone_database()
    {
        var berlin = TaskSchedule.Create(Cron("@daily", "Europe/Berlin"));
        var newYork = TaskSchedule.Create(Cron("@daily", "America/New_York"));
        var utc = TaskSchedule.Create(Cron("@daily"));

        Assert.Equal(TimeSpan.FromHours(1), berlin.TimeZone.GetUtcOffset(new DateTimeOffset(2026, 1, 15, 0, 0, 0, TimeSpan.Zero)));
        Assert.Equal(TimeSpan.FromHours(-4), newYork.TimeZone.GetUtcOffset(new DateTimeOffset(2026, 7, 15, 0, 0, 0, TimeSpan.Zero)));
        Assert.Equal(TimeZoneInfo.Utc, utc.TimeZone);
    }
}
