using System.Text.Json.Nodes;

namespace Dtask.Testing.Kubernetes;

/// <summary>JSON Merge Patch (RFC 7386), the <c>application/merge-patch+json</c> content type.</summary>
internal static class JsonMergePatch
{
    /// <summary>A new document: <paramref name="target"/> with <paramref name="patch"/> merged in; neither is changed.</summary>
    public static JsonNode? Apply(JsonNode? target, JsonNode? patch)
    {
        if (patch is not JsonObject members)
        {
            return patch?.DeepClone();
        }

        var result = target is JsonObject existing ? (JsonObject)existing.DeepClone() : [];
        foreach (var (name, value) in members)
        {
            if (value is null)
            {
                result.Remove(name);
            }
            else
            {
                result[name] = Apply(result[name], value);
            }
        }

        return result;
    }
}
