namespace Dtask.Core.Scheduling;

/// <summary>The schedule part of a task's spec, as schedule math needs it.</summary>
/// <param name="Cron"><c>spec.schedule</c>: 5 or 6 cron fields, a macro (<c>@hourly</c>…), or <c>@every 90s</c>; may contain <c>H</c>.</param>
/// <param name="Every"><c>spec.every</c>, already parsed.</param>
/// <param name="TimeZone"><c>spec.timeZone</c>: an IANA zone id; <c>null</c> means UTC.</param>
/// <param name="Jitter"><c>spec.jitter</c>, already parsed.</param>
/// <param name="HashKey"><c>namespace/name</c>: seeds <c>H</c> fields and jitter so every node computes the same instants.</param>
public sealed record ScheduleSpec(string? Cron, TimeSpan? Every, string? TimeZone, TimeSpan? Jitter, string HashKey);

/// <summary>A schedule problem, on one field of the spec (<c>schedule</c>, <c>every</c>, <c>timeZone</c> or <c>jitter</c>).</summary>
public sealed record ScheduleError(string Field, string Reason);
