using System.Globalization;
using System.Text.RegularExpressions;
using Dtask.Core.Durations;

namespace Dtask.Core.Scheduling;

/// <summary>
/// The text of <c>spec.schedule</c>, checked field by field and with every <c>H</c> replaced by the value hashed
/// from the task's hash key, ready for Cronos. Accepted: five fields (minute hour day-of-month month day-of-week),
/// six fields (second first), the macros <c>@hourly @daily @midnight @weekly @monthly @yearly @annually</c>, and
/// <c>@every &lt;duration&gt;</c> (the same as <c>spec.every</c>).
/// </summary>
/// <remarks>
/// <c>H</c> forms (Jenkins style): <c>H</c> picks one value of the field (day-of-month 1-28, day-of-week 0-6);
/// <c>H/n</c> means every n starting at a hashed offset in <c>[0, n)</c> from the field's minimum; <c>H(a-b)</c>
/// picks one value in a..b; <c>H(a-b)/n</c> means every n within a..b starting at a hashed offset. The hash is
/// <see cref="NameHash"/> of (hash key, field name), so the same task gets the same values everywhere.
/// </remarks>
/// <param name="Text">The text as written.</param>
/// <param name="Expression">The cron expression with <c>H</c> and macros resolved; <c>null</c> for <c>@every</c>.</param>
/// <param name="IncludesSeconds">Whether <see cref="Expression"/> has six fields (seconds first).</param>
/// <param name="Every">The period of an <c>@every</c> schedule; <c>null</c> otherwise.</param>
public sealed partial record CronNotation(string Text, string? Expression, bool IncludesSeconds, TimeSpan? Every)
{
    private static readonly Dictionary<string, string> Macros = new(StringComparer.OrdinalIgnoreCase)
    {
        ["@hourly"] = "0 * * * *",
        ["@daily"] = "0 0 * * *",
        ["@midnight"] = "0 0 * * *",
        ["@weekly"] = "0 0 * * 0",
        ["@monthly"] = "0 0 1 * *",
        ["@yearly"] = "0 0 1 1 *",
        ["@annually"] = "0 0 1 1 *",
    };

    /// <summary>
    /// Parses <paramref name="text"/>, resolving <c>H</c> with <paramref name="hashKey"/>. On failure
    /// <paramref name="error"/> names the field and the problem, e.g. <c>field 2 (hour) '25' is out of range 0-23</c>.
    /// The field syntax is checked here; whether Cronos accepts the combination is checked by the caller.
    /// </summary>
    public static bool TryParse(string? text, string hashKey, out CronNotation? notation, out string? error)
    {
        ArgumentNullException.ThrowIfNull(hashKey);
        notation = null;
        error = null;
        if (string.IsNullOrWhiteSpace(text))
        {
            error = "is empty; write a cron expression such as '30 2 * * *', a macro such as @daily, or @every 90s";
            return false;
        }

        var trimmed = text.Trim();
        if (trimmed.StartsWith('@'))
        {
            return TryParseMacro(text, trimmed, out notation, out error);
        }

        var fields = trimmed.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        if (fields.Length is not (5 or 6))
        {
            error = $"has {fields.Length} field{(fields.Length == 1 ? "" : "s")}; write 5 (minute hour day-of-month month day-of-week) or 6 (second minute hour day-of-month month day-of-week)";
            return false;
        }

        var layout = fields.Length == 6 ? CronField.SixFields : CronField.FiveFields;
        var resolved = new string[fields.Length];
        for (var i = 0; i < fields.Length; i++)
        {
            var result = ResolveField(fields[i], layout[i], hashKey);
            if (result.Error is not null)
            {
                error = $"field {i + 1} ({layout[i].Name}) {result.Error}";
                return false;
            }

            resolved[i] = result.Text!;
        }

        notation = new CronNotation(text, string.Join(' ', resolved), fields.Length == 6, null);
        return true;
    }

    private static bool TryParseMacro(string text, string trimmed, out CronNotation? notation, out string? error)
    {
        notation = null;
        error = null;
        const string everyPrefix = "@every";
        if (trimmed.StartsWith(everyPrefix, StringComparison.OrdinalIgnoreCase)
            && (trimmed.Length == everyPrefix.Length || char.IsWhiteSpace(trimmed[everyPrefix.Length])))
        {
            var duration = trimmed[everyPrefix.Length..].Trim();
            if (!GoDuration.TryParse(duration, out var period, out var durationError))
            {
                error = $"@every: duration {durationError}";
                return false;
            }

            notation = new CronNotation(text, null, false, period);
            return true;
        }

        if (!Macros.TryGetValue(trimmed, out var expansion))
        {
            error = $"'{trimmed}' is not a known macro; use @hourly, @daily, @midnight, @weekly, @monthly, @yearly, @annually or @every <duration>";
            return false;
        }

        notation = new CronNotation(text, expansion, false, null);
        return true;
    }

    private readonly record struct FieldResult(string? Text, string? Error)
    {
        public static FieldResult Ok(string text) => new(text, null);

        public static FieldResult Fail(string error) => new(null, error);
    }

    private static FieldResult ResolveField(string field, CronField spec, string hashKey)
    {
        var items = field.Split(',');
        var resolved = new string[items.Length];
        for (var k = 0; k < items.Length; k++)
        {
            var item = items[k];
            if (item.Length == 0)
            {
                return FieldResult.Fail($"'{field}' has an empty list item");
            }

            var result = item[0] is 'H' or 'h'
                ? ResolveHashed(item, spec, hashKey, k == 0 ? spec.Name : $"{spec.Name}#{k}")
                : CheckPlain(item, spec);
            if (result.Error is not null)
            {
                return result;
            }

            resolved[k] = result.Text!;
        }

        return FieldResult.Ok(string.Join(',', resolved));
    }

    private static FieldResult ResolveHashed(string item, CronField spec, string hashKey, string purpose)
    {
        var match = HashedItem().Match(item);
        if (!match.Success)
        {
            return FieldResult.Fail($"'{item}' is not a valid H form; write H, H/n, H(a-b) or H(a-b)/n");
        }

        int? step = null;
        if (match.Groups["step"].Success)
        {
            if (!TryNumber(match.Groups["step"].Value, out var s) || s < 1 || s > spec.Max)
            {
                return FieldResult.Fail($"step '{match.Groups["step"].Value}' in '{item}' must be between 1 and {spec.Max}");
            }

            step = s;
        }

        int lo, hi;
        if (match.Groups["from"].Success)
        {
            var fromText = match.Groups["from"].Value;
            var toText = match.Groups["to"].Value;
            if (!TryNumber(fromText, out lo) || lo < spec.Min || lo > spec.Max)
            {
                return FieldResult.Fail($"'{fromText}' is out of range {spec.Min}-{spec.Max}");
            }

            if (!TryNumber(toText, out hi) || hi < spec.Min || hi > spec.Max)
            {
                return FieldResult.Fail($"'{toText}' is out of range {spec.Min}-{spec.Max}");
            }

            if (lo > hi)
            {
                return FieldResult.Fail($"range '{fromText}-{toText}' in '{item}' goes backwards");
            }
        }
        else if (step is null)
        {
            (lo, hi) = (spec.HashMin, spec.HashMax);
        }
        else
        {
            (lo, hi) = (spec.Min, ReferenceEquals(spec, CronField.DayOfWeek) ? 6 : spec.Max);
        }

        if (step is null)
        {
            return FieldResult.Ok(Format(lo + NameHash.Pick(hashKey, purpose, hi - lo + 1)));
        }

        var start = lo + NameHash.Pick(hashKey, purpose, Math.Min(step.Value, hi - lo + 1));
        return FieldResult.Ok(start == hi ? Format(start) : $"{Format(start)}-{Format(hi)}/{Format(step.Value)}");
    }

    private static FieldResult CheckPlain(string item, CronField spec)
    {
        var slash = item.IndexOf('/', StringComparison.Ordinal);
        var range = slash < 0 ? item : item[..slash];
        if (slash >= 0)
        {
            var stepText = item[(slash + 1)..];
            if (!TryNumber(stepText, out var step) || step < 1 || step > spec.Max)
            {
                return FieldResult.Fail($"step '{stepText}' in '{item}' must be between 1 and {spec.Max}");
            }
        }

        if (range is "*" || (range is "?" && spec.IsDayField))
        {
            return FieldResult.Ok(item);
        }

        if (range is "?")
        {
            return FieldResult.Fail($"'?' is only allowed in day-of-month and day-of-week");
        }

        if (spec.IsDayField && slash < 0 && IsDaySpecial(item, spec, out var specialError))
        {
            return specialError is null ? FieldResult.Ok(item) : FieldResult.Fail(specialError);
        }

        var dash = range.IndexOf('-', StringComparison.Ordinal);
        var firstText = dash < 0 ? range : range[..dash];
        var first = CheckValue(firstText, spec);
        if (first.Error is not null)
        {
            return FieldResult.Fail(first.Error);
        }

        if (dash >= 0)
        {
            var lastText = range[(dash + 1)..];
            var last = CheckValue(lastText, spec);
            if (last.Error is not null)
            {
                return FieldResult.Fail(last.Error);
            }

            if (last.Value < first.Value)
            {
                return FieldResult.Fail($"range '{range}' goes backwards; split it, for example {firstText}-{spec.Max},{spec.Min}-{lastText}");
            }
        }

        return FieldResult.Ok(item);
    }

    private static (int Value, string? Error) CheckValue(string text, CronField spec)
    {
        if (text.Length == 0)
        {
            return (0, $"has an empty value");
        }

        if (TryNumber(text, out var number))
        {
            return number < spec.Min || number > spec.Max
                ? (0, $"'{text}' is out of range {spec.Min}-{spec.Max}")
                : (number, null);
        }

        for (var i = 0; i < spec.Names.Count; i++)
        {
            if (string.Equals(spec.Names[i], text, StringComparison.OrdinalIgnoreCase))
            {
                return (spec.Min + i, null);
            }
        }

        var allowed = spec.Names.Count > 0
            ? $"a number {spec.Min}-{spec.Max} or a name {spec.Names[0]}-{spec.Names[^1]}"
            : $"a number {spec.Min}-{spec.Max}";
        return (0, $"'{text}' is not {allowed}, a range (a-b), a step (*/n), a list (a,b) or H");
    }

    private static bool IsDaySpecial(string item, CronField spec, out string? error)
    {
        error = null;
        if (ReferenceEquals(spec, CronField.DayOfMonth))
        {
            var m = DayOfMonthSpecial().Match(item);
            if (!m.Success)
            {
                return false;
            }

            if (m.Groups["offset"].Success && (!TryNumber(m.Groups["offset"].Value, out var offset) || offset > 30))
            {
                error = $"'{item}': the offset after L- must be between 0 and 30";
            }
            else if (m.Groups["day"].Success && (!TryNumber(m.Groups["day"].Value, out var day) || day < 1 || day > 31))
            {
                error = $"'{m.Groups["day"].Value}' is out of range 1-31";
            }

            return true;
        }

        var w = DayOfWeekSpecial().Match(item);
        if (!w.Success)
        {
            return false;
        }

        var dayOfWeek = CheckValue(w.Groups["day"].Value, spec);
        if (dayOfWeek.Error is not null)
        {
            error = dayOfWeek.Error;
        }
        else if (w.Groups["nth"].Success && (!TryNumber(w.Groups["nth"].Value, out var nth) || nth < 1 || nth > 5))
        {
            error = $"'{item}': the week number after # must be between 1 and 5";
        }

        return true;
    }

    private static bool TryNumber(string text, out int value) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value);

    private static string Format(long value) => value.ToString(CultureInfo.InvariantCulture);

    [GeneratedRegex(@"^[Hh](?:\((?<from>\d+)-(?<to>\d+)\))?(?:/(?<step>\d+))?$", RegexOptions.CultureInvariant)]
    private static partial Regex HashedItem();

    [GeneratedRegex(@"^(?:L(?:-(?<offset>\d+))?|LW|(?<day>\d+)W)$", RegexOptions.CultureInvariant | RegexOptions.IgnoreCase)]
    private static partial Regex DayOfMonthSpecial();

    [GeneratedRegex(@"^(?<day>[0-9A-Za-z]+)(?:L|#(?<nth>\d+))$", RegexOptions.CultureInvariant)]
    private static partial Regex DayOfWeekSpecial();
}
