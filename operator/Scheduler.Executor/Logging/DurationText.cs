using System.Globalization;

namespace Dtask.Executor.Logging;

/// <summary>Durations the way log lines show them: <c>0.4 ms</c>, <c>20 ms</c>, <c>1.2 s</c>, <c>4 min 05 s</c>, <c>2 h 03 min</c>.</summary>
public static class DurationText
{
    /// <summary>The text for <paramref name="duration"/> (negative durations read as <c>0 ms</c>).</summary>
    /// <param name="duration">The duration.</param>
    /// <returns>The text.</returns>
    public static string Of(TimeSpan duration)
    {
        if (duration < TimeSpan.Zero)
        {
            duration = TimeSpan.Zero;
        }

        return duration switch
        {
            { TotalMilliseconds: < 10 } => duration.TotalMilliseconds.ToString("0.#", CultureInfo.InvariantCulture) + " ms",
            { TotalSeconds: < 1 } => string.Create(CultureInfo.InvariantCulture, $"{(int)duration.TotalMilliseconds} ms"),
            { TotalSeconds: < 10 } => duration.TotalSeconds.ToString("0.#", CultureInfo.InvariantCulture) + " s",
            { TotalMinutes: < 1 } => string.Create(CultureInfo.InvariantCulture, $"{(int)duration.TotalSeconds} s"),
            { TotalHours: < 1 } => string.Create(CultureInfo.InvariantCulture, $"{duration.Minutes} min {duration.Seconds:00} s"),
            _ => string.Create(CultureInfo.InvariantCulture, $"{(int)duration.TotalHours} h {duration.Minutes:00} min"),
        };
    }
}
