using System.Text.Json;
using Dtask.Core.Manifests;

namespace Dtask.Core.State;

/// <summary>The JSON form of run records, node records and control requests in KV: the same options as task JSON.</summary>
public static class StateJson
{
    // Reading also refuses an explicit null where the record says a value is required, so a decoded record never
    // carries a null the code that uses it does not expect. MaxDepth stays at 64: deeper input fails at once.
    private static readonly JsonSerializerOptions ReadOptions = CreateReadOptions();

    /// <summary>Compact JSON of <paramref name="value"/>.</summary>
    public static string Serialize<T>(T value) => TaskJson.Serialize(value);

    /// <summary>Reads a value written by <see cref="Serialize{T}"/>; throws <see cref="JsonException"/> when it is not that shape.</summary>
    public static T Deserialize<T>(string json) =>
        JsonSerializer.Deserialize<T>(json, ReadOptions) ?? throw new JsonException("expected an object, found null");

    /// <summary>Reads a value, or null when the text is not that shape.</summary>
    public static T? TryDeserialize<T>(string? json)
        where T : class => TryDecode<T>(json, out _);

    /// <summary>
    /// Reads a value, or null with the reason in <paramref name="problem"/> when the text is not that shape (any text:
    /// garbage, the wrong JSON type, nulls where a value is required, nesting deeper than 64). Never throws.
    /// </summary>
    public static T? TryDecode<T>(string? json, out string problem)
        where T : class
    {
        if (string.IsNullOrWhiteSpace(json))
        {
            problem = "the value is empty";
            return null;
        }

        try
        {
            problem = "";
            return Deserialize<T>(json);
        }
#pragma warning disable CA1031 // Any failure to decode a stored value makes it unreadable, whatever its type.
        catch (Exception e) when (e is not OutOfMemoryException)
#pragma warning restore CA1031
        {
            problem = Describe(e);
            return null;
        }
    }

    /// <summary>A one-line reason for a decode failure, at most 200 characters (no stack trace).</summary>
    public static string Describe(Exception exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        var text = exception.Message.ReplaceLineEndings(" ");
        return "not valid JSON of this kind: " + (text.Length > 200 ? text[..200] + "…" : text);
    }

    private static JsonSerializerOptions CreateReadOptions()
    {
        var options = new JsonSerializerOptions(TaskJson.Options) { RespectNullableAnnotations = true };
        // Only the words: a number in place of a state or an action is garbage, not a state nobody knows.
        options.Converters.Add(new System.Text.Json.Serialization.JsonStringEnumConverter<RunState>(null, allowIntegerValues: false));
        options.Converters.Add(new System.Text.Json.Serialization.JsonStringEnumConverter<ControlAction>(null, allowIntegerValues: false));
        options.MakeReadOnly(populateMissingResolver: true);
        return options;
    }
}
