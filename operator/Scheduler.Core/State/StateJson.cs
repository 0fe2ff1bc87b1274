using System.Text.Json;
using Dtask.Core.Manifests;

namespace Dtask.Core.State;

/// <summary>The JSON form of run records, node records and control requests in KV: the same options as task JSON.</summary>
public static class StateJson
{
    /// <summary>Compact JSON of <paramref name="value"/>.</summary>
    public static string Serialize<T>(T value) => TaskJson.Serialize(value);

    /// <summary>Reads a value written by <see cref="Serialize{T}"/>; throws <see cref="JsonException"/> when it is not that shape.</summary>
    public static T Deserialize<T>(string json) => TaskJson.Deserialize<T>(json);

    /// <summary>Reads a value, or null when the text is not that shape.</summary>
    public static T? TryDeserialize<T>(string? json)
        where T : class
    {
        if (string.IsNullOrWhiteSpace(json))
        {
            return null;
        }

        try
        {
            return TaskJson.Deserialize<T>(json);
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
