using System.Reflection;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Dtask.Core.Manifests;

/// <summary>The manifest words of enums: the member name, or its <see cref="JsonStringEnumMemberNameAttribute"/>.</summary>
public static class EnumWords
{
    /// <summary>The words of <typeparamref name="TEnum"/>, in declaration order.</summary>
    public static IReadOnlyList<string> Of<TEnum>()
        where TEnum : struct, Enum => [.. Members<TEnum>().Select(m => m.Word)];

    internal static IEnumerable<(string Word, TEnum Value)> Members<TEnum>()
        where TEnum : struct, Enum =>
        typeof(TEnum).GetFields(BindingFlags.Public | BindingFlags.Static)
            .OrderBy(f => f.MetadataToken)
            .Select(f => (f.GetCustomAttribute<JsonStringEnumMemberNameAttribute>()?.Name ?? f.Name, (TEnum)f.GetValue(null)!));
}

/// <summary>
/// Reads and writes an enum as its manifest word (<see cref="EnumWords"/>), matching case exactly as Kubernetes
/// does: <c>forbid</c> is not <c>Forbid</c>. Numbers are refused.
/// </summary>
public sealed class ExactEnumConverter<TEnum> : JsonConverter<TEnum>
    where TEnum : struct, Enum
{
    private readonly Dictionary<string, TEnum> _byWord = EnumWords.Members<TEnum>().ToDictionary(m => m.Word, m => m.Value, StringComparer.Ordinal);
    private readonly Dictionary<TEnum, string> _byValue = EnumWords.Members<TEnum>().ToDictionary(m => m.Value, m => m.Word);

    /// <inheritdoc />
    public override TEnum Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        var word = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
        return word is not null && _byWord.TryGetValue(word, out var value)
            ? value
            : throw new JsonException($"expected one of: {string.Join(", ", _byWord.Keys)}");
    }

    /// <inheritdoc />
    public override void Write(Utf8JsonWriter writer, TEnum value, JsonSerializerOptions options) =>
        writer.WriteStringValue(_byValue.TryGetValue(value, out var word) ? word : throw new JsonException($"{value} is not a {typeof(TEnum).Name}"));
}
