using System.Globalization;
using System.Text;

namespace Dtask.Core.Durations;

/// <summary>
/// Durations written the Go / Kubernetes way: a sequence of decimal numbers, each with a unit
/// (<c>ns</c>, <c>us</c>/<c>µs</c>, <c>ms</c>, <c>s</c>, <c>m</c>, <c>h</c>), such as <c>90s</c>, <c>1h30m</c>, <c>1.5h</c>, <c>250ms</c>.
/// A bare <c>0</c> is zero. A leading sign is accepted, so callers can reject negative values with a clear message.
/// </summary>
public static class GoDuration
{
    private static readonly (string Unit, long Ticks)[] Units =
    [
        ("ns", 0), // handled specially: 100 ns per tick
        ("us", 10),
        ("µs", 10),
        ("μs", 10),
        ("ms", TimeSpan.TicksPerMillisecond),
        ("s", TimeSpan.TicksPerSecond),
        ("m", TimeSpan.TicksPerMinute),
        ("h", TimeSpan.TicksPerHour),
    ];

    /// <summary>Parses <paramref name="text"/>; on failure <paramref name="error"/> says why, in words a user can act on.</summary>
    public static bool TryParse(string? text, out TimeSpan value, out string? error)
    {
        value = TimeSpan.Zero;
        error = null;
        if (string.IsNullOrWhiteSpace(text))
        {
            error = "is empty; write a duration such as 90s, 5m or 1h30m";
            return false;
        }

        var s = text.Trim();
        var negative = false;
        if (s[0] is '+' or '-')
        {
            negative = s[0] == '-';
            s = s[1..];
        }

        if (s == "0")
        {
            return true;
        }

        if (s.Length == 0)
        {
            error = $"'{text}' is not a duration; write one such as 90s, 5m or 1h30m";
            return false;
        }

        decimal totalTicks = 0;
        var i = 0;
        while (i < s.Length)
        {
            var start = i;
            while (i < s.Length && (char.IsAsciiDigit(s[i]) || s[i] == '.'))
            {
                i++;
            }

            if (start == i || !decimal.TryParse(s.AsSpan(start, i - start), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var number))
            {
                error = $"'{text}' is not a duration; write one such as 90s, 5m or 1h30m";
                return false;
            }

            var unitStart = i;
            while (i < s.Length && !char.IsAsciiDigit(s[i]) && s[i] != '.')
            {
                i++;
            }

            var unit = s[unitStart..i];
            if (unit.Length == 0)
            {
                error = $"'{text}' has a number without a unit; use one of ns, us, ms, s, m, h (for example 90s)";
                return false;
            }

            var factor = Array.Find(Units, u => u.Unit == unit);
            if (factor.Unit is null)
            {
                error = $"'{text}' has an unknown unit '{unit}'; use one of ns, us, ms, s, m, h";
                return false;
            }

            try
            {
                totalTicks += factor.Unit == "ns" ? number / 100m : number * factor.Ticks;
            }
            catch (OverflowException)
            {
                error = $"'{text}' is too long a duration";
                return false;
            }

            if (totalTicks > TimeSpan.MaxValue.Ticks)
            {
                error = $"'{text}' is too long a duration";
                return false;
            }
        }

        var ticks = (long)decimal.Truncate(totalTicks);
        value = TimeSpan.FromTicks(negative ? -ticks : ticks);
        return true;
    }

    /// <summary>Parses <paramref name="text"/> or throws <see cref="FormatException"/> with the reason.</summary>
    public static TimeSpan Parse(string text) =>
        TryParse(text, out var value, out var error) ? value : throw new FormatException($"duration {error}");

    /// <summary>Formats the way Go prints a duration, without a zero tail: <c>1h30m</c>, <c>90s</c> → <c>1m30s</c>, <c>250ms</c>, <c>0s</c>.</summary>
    public static string Format(TimeSpan value)
    {
        if (value == TimeSpan.Zero)
        {
            return "0s";
        }

        var sb = new StringBuilder();
        if (value < TimeSpan.Zero)
        {
            sb.Append('-');
            value = value.Duration();
        }

        var hours = (long)value.TotalHours;
        if (hours > 0)
        {
            sb.Append(hours.ToString(CultureInfo.InvariantCulture)).Append('h');
        }

        if (value.Minutes > 0)
        {
            sb.Append(value.Minutes.ToString(CultureInfo.InvariantCulture)).Append('m');
        }

        var subSecondTicks = value.Ticks % TimeSpan.TicksPerSecond;
        if (value.Seconds > 0 || (subSecondTicks > 0 && value >= TimeSpan.FromSeconds(1)))
        {
            var seconds = value.Seconds + (subSecondTicks / (decimal)TimeSpan.TicksPerSecond);
            sb.Append(seconds.ToString("0.#######", CultureInfo.InvariantCulture)).Append('s');
        }
        else if (subSecondTicks > 0)
        {
            var ms = subSecondTicks / (decimal)TimeSpan.TicksPerMillisecond;
            sb.Append(ms.ToString("0.####", CultureInfo.InvariantCulture)).Append("ms");
        }

        return sb.ToString();
    }
}
