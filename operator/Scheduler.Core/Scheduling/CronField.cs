namespace Dtask.Core.Scheduling;

/// <summary>
/// One field of a cron expression: its name, the range of its values, the range an <c>H</c> picks from, and
/// the names it accepts (<c>JAN</c>…, <c>SUN</c>…).
/// </summary>
/// <param name="Name">The field's name as error messages show it (<c>minute</c>, <c>day-of-week</c>…); also the hash purpose of <c>H</c>.</param>
/// <param name="Min">Smallest value.</param>
/// <param name="Max">Largest value.</param>
/// <param name="HashMin">Smallest value a bare <c>H</c> may pick.</param>
/// <param name="HashMax">Largest value a bare <c>H</c> may pick (28 for day-of-month, 6 for day-of-week).</param>
/// <param name="Names">Accepted names, the first one meaning <paramref name="Min"/>; empty when the field takes numbers only.</param>
public sealed record CronField(string Name, int Min, int Max, int HashMin, int HashMax, IReadOnlyList<string> Names)
{
    /// <summary>Seconds, 0-59 (only in six-field expressions).</summary>
    public static CronField Second { get; } = new("second", 0, 59, 0, 59, []);

    /// <summary>Minutes, 0-59.</summary>
    public static CronField Minute { get; } = new("minute", 0, 59, 0, 59, []);

    /// <summary>Hours, 0-23.</summary>
    public static CronField Hour { get; } = new("hour", 0, 23, 0, 23, []);

    /// <summary>Day of month, 1-31; <c>H</c> picks from 1-28 so that it exists in every month. Also takes <c>?</c>, <c>L</c>, <c>L-n</c>, <c>nW</c>, <c>LW</c>.</summary>
    public static CronField DayOfMonth { get; } = new("day-of-month", 1, 31, 1, 28, []);

    /// <summary>Month, 1-12 or <c>JAN</c>-<c>DEC</c>.</summary>
    public static CronField Month { get; } = new("month", 1, 12, 1, 12, ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]);

    /// <summary>Day of week, 0-7 (0 and 7 are Sunday) or <c>SUN</c>-<c>SAT</c>; <c>H</c> picks from 0-6. Also takes <c>?</c>, <c>nL</c>, <c>n#k</c>.</summary>
    public static CronField DayOfWeek { get; } = new("day-of-week", 0, 7, 0, 6, ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]);

    /// <summary>The five standard fields, in order.</summary>
    public static IReadOnlyList<CronField> FiveFields { get; } = [Minute, Hour, DayOfMonth, Month, DayOfWeek];

    /// <summary>The six fields of an expression with seconds, in order.</summary>
    public static IReadOnlyList<CronField> SixFields { get; } = [Second, Minute, Hour, DayOfMonth, Month, DayOfWeek];

    /// <summary>Whether <c>?</c> and the <c>L</c>/<c>W</c>/<c>#</c> forms are allowed.</summary>
    public bool IsDayField => ReferenceEquals(this, DayOfMonth) || ReferenceEquals(this, DayOfWeek);
}
