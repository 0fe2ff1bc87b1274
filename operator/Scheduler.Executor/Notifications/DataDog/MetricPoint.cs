using System.Globalization;
using System.Text;

namespace Dtask.Executor.Notifications.DataDog;

/// <summary>The DogStatsD metric types the executor sends.</summary>
public enum MetricKind
{
    /// <summary><c>c</c>: a count.</summary>
    Count,

    /// <summary><c>g</c>: a gauge.</summary>
    Gauge,

    /// <summary><c>d</c>: a distribution (aggregated server-side, percentiles across hosts).</summary>
    Distribution,

    /// <summary><c>ms</c>: a timing.</summary>
    Timing,
}

/// <summary>One measurement.</summary>
/// <param name="Name">The metric name, e.g. <c>dtask.run.duration</c>.</param>
/// <param name="Value">The value.</param>
/// <param name="Kind">The type.</param>
/// <param name="Tags">Tags, <c>key:value</c> or <c>key</c>, already sanitized.</param>
/// <param name="Host">The node the point is about (the series API's <c>host</c>).</param>
public sealed record MetricPoint(string Name, double Value, MetricKind Kind, IReadOnlyList<string> Tags, string Host);

/// <summary>The DogStatsD datagram format: <c>name:value|type|#tag:value,tag2:value</c>.</summary>
public static class DogStatsDFormat
{
    /// <summary>The longest tag kept, in characters.</summary>
    public const int MaxTagLength = 200;

    /// <summary>The datagram text of a point.</summary>
    /// <param name="point">The point.</param>
    /// <returns>The datagram.</returns>
    public static string Format(MetricPoint point)
    {
        ArgumentNullException.ThrowIfNull(point);
        var text = new StringBuilder(64)
            .Append(SanitizeName(point.Name)).Append(':')
            .Append(point.Value.ToString("0.###", CultureInfo.InvariantCulture)).Append('|')
            .Append(TypeCode(point.Kind));
        if (point.Tags.Count > 0)
        {
            text.Append("|#").AppendJoin(',', point.Tags);
        }

        return text.ToString();
    }

    /// <summary>The type code: <c>c</c>, <c>g</c>, <c>d</c>, <c>ms</c>.</summary>
    /// <param name="kind">The type.</param>
    /// <returns>The code.</returns>
    public static string TypeCode(MetricKind kind) => kind switch
    {
        MetricKind.Count => "c",
        MetricKind.Gauge => "g",
        MetricKind.Distribution => "d",
        MetricKind.Timing => "ms",
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    /// <summary>
    /// A tag that cannot break the datagram: <c>|</c>, <c>,</c>, <c>#</c>, whitespace and control characters become
    /// <c>_</c>; at most <see cref="MaxTagLength"/> characters.
    /// </summary>
    /// <param name="tag">A tag, <c>key:value</c> or <c>key</c>.</param>
    /// <returns>The safe tag.</returns>
    public static string SanitizeTag(string tag)
    {
        ArgumentNullException.ThrowIfNull(tag);
        var builder = new StringBuilder(tag.Length);
        foreach (var c in tag.Trim())
        {
            builder.Append(c is '|' or ',' or '#' || char.IsWhiteSpace(c) || char.IsControl(c) ? '_' : c);
        }

        return builder.Length > MaxTagLength ? builder.ToString(0, MaxTagLength) : builder.ToString();
    }

    /// <summary>A tag <c>key:value</c> with the value sanitized.</summary>
    /// <param name="key">The key.</param>
    /// <param name="value">The value.</param>
    /// <returns>The tag.</returns>
    public static string Tag(string key, string value) => SanitizeTag(key + ":" + value);

    private static string SanitizeName(string name)
    {
        var builder = new StringBuilder(name.Length);
        foreach (var c in name)
        {
            builder.Append(char.IsAsciiLetterOrDigit(c) || c is '_' or '.' ? c : '_');
        }

        return builder.ToString();
    }
}

/// <summary>Where metric points go.</summary>
public interface IMetricSink : IAsyncDisposable
{
    /// <summary>Sends points; returns at once and never throws.</summary>
    /// <param name="points">The points.</param>
    void Submit(IReadOnlyList<MetricPoint> points);
}
