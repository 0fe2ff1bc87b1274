using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Dtask.Core.Model;

namespace Dtask.Core.Manifests;

/// <summary>
/// The JSON form of tasks, used in KV and for the Kubernetes API: camelCase, nulls omitted, enums as their
/// manifest words, timestamps in RFC 3339 UTC. Serializing what was deserialized gives the same text.
/// </summary>
public static class TaskJson
{
    /// <summary>The options every JSON read and write of a task uses. Read-only.</summary>
    public static JsonSerializerOptions Options { get; } = CreateOptions();

    /// <summary>Compact JSON of <paramref name="value"/>.</summary>
    public static string Serialize<T>(T value) => JsonSerializer.Serialize(value, Options);

    /// <summary>Reads JSON written by <see cref="Serialize{T}"/> (or by the API server); throws <see cref="JsonException"/> when it is not that shape.</summary>
    public static T Deserialize<T>(string json) =>
        JsonSerializer.Deserialize<T>(json, Options) ?? throw new JsonException("expected an object, found null");

    /// <summary>
    /// The canonical JSON of a spec: compact, object keys sorted by ordinal, nulls omitted. Equal specs give equal
    /// bytes whatever the order of map entries in the manifest.
    /// </summary>
    public static string Canonical(ScheduledTaskSpec spec)
    {
        var node = JsonSerializer.SerializeToNode(spec, Options) ?? new JsonObject();
        return Sorted(node)!.ToJsonString();
    }

    /// <summary>The canonical JSON of any task document (keys sorted by ordinal, nulls omitted, compact).</summary>
    public static string CanonicalOf<T>(T value)
    {
        var node = JsonSerializer.SerializeToNode(value, Options) ?? new JsonObject();
        return Sorted(node)!.ToJsonString();
    }

    /// <summary><c>sha256:</c> and the lower-case hex SHA-256 of <see cref="Canonical"/>.</summary>
    public static string SpecHash(ScheduledTaskSpec spec) =>
        "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(Canonical(spec))));

    private static JsonNode? Sorted(JsonNode? node) => node switch
    {
        JsonObject obj => new JsonObject(obj
            .OrderBy(p => p.Key, StringComparer.Ordinal)
            .Select(p => KeyValuePair.Create(p.Key, Sorted(p.Value)))),
        JsonArray array => new JsonArray([.. array.Select(Sorted)]),
        null => null,
        _ => node.DeepClone(),
    };

    private static JsonSerializerOptions CreateOptions()
    {
        var options = new JsonSerializerOptions
        {
            PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
            DictionaryKeyPolicy = null,
            DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
            Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
            Converters =
            {
                new Rfc3339TimeConverter(),
                new ExactEnumConverter<ConcurrencyPolicy>(),
                new ExactEnumConverter<MissedRunPolicy>(),
                new ExactEnumConverter<Placement>(),
                new ExactEnumConverter<NotifyEvent>(),
            },
        };
        options.MakeReadOnly(populateMissingResolver: true);
        return options;
    }
}
