using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Dtask.Core.Manifests;

/// <summary>
/// Timestamps the Kubernetes way: UTC with a <c>Z</c>, fractional seconds only when there are some
/// (<c>2025-03-30T01:30:00Z</c>), so a status read from the API server is written back unchanged.
/// </summary>
public sealed class Rfc3339TimeConverter : JsonConverter<DateTimeOffset>
{
    /// <inheritdoc />
    public override DateTimeOffset Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        var text = reader.GetString();
        if (text is null || !TryParse(text, out var value))
        {
            throw new JsonException($"'{text}' is not an RFC 3339 timestamp such as 2025-03-30T01:30:00Z");
        }

        return value;
    }

    /// <inheritdoc />
    public override void Write(Utf8JsonWriter writer, DateTimeOffset value, JsonSerializerOptions options) =>
        writer.WriteStringValue(Format(value));

    /// <summary>Formats <paramref name="value"/> in UTC with a trailing <c>Z</c>.</summary>
    public static string Format(DateTimeOffset value)
    {
        var utc = value.ToUniversalTime();
        var text = utc.ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFF", CultureInfo.InvariantCulture).TrimEnd('.');
        return text + "Z";
    }

    /// <summary>Parses a timestamp with an explicit offset or <c>Z</c>.</summary>
    public static bool TryParse(string text, out DateTimeOffset value) =>
        DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out value)
        && text.Contains('T', StringComparison.Ordinal);
}
