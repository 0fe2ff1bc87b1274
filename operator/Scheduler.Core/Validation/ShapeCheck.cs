using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Dtask.Core.Crd;
using Dtask.Core.Manifests;

namespace Dtask.Core.Validation;

/// <summary>
/// Checks a document against the field tree of <see cref="ScheduledTaskSchema.Document"/>: unknown fields, wrong
/// types, missing required fields and unknown enum words. It returns the document without the offending values, so
/// the rest can still be read and checked, and the paths of the values it removed.
/// </summary>
internal sealed class ShapeCheck
{
    private readonly List<FieldError> _errors;
    private readonly HashSet<string> _removed = new(StringComparer.Ordinal);

    public ShapeCheck(List<FieldError> errors) => _errors = errors;

    /// <summary>Paths of fields that were set but malformed, and so were removed.</summary>
    public IReadOnlySet<string> Removed => _removed;

    public JsonNode? Check(JsonNode? node, SchemaNode schema, string path)
    {
        if (node is null)
        {
            return null;
        }

        switch (schema.Type)
        {
            case "object":
                return node is JsonObject obj ? CheckObject(obj, schema, path) : Mismatch(node, schema, path);
            case "array":
                return node is JsonArray array ? CheckArray(array, schema, path) : Mismatch(node, schema, path);
            case "string":
                if (node.GetValueKind() != JsonValueKind.String)
                {
                    return Mismatch(node, schema, path);
                }

                var text = node.GetValue<string>();
                if (schema.Enum is { } allowed && !allowed.Contains(text))
                {
                    return Fail(path, $"'{text}' is not allowed; use one of: {string.Join(", ", allowed)}");
                }

                if (schema.Format == "date-time" && !Rfc3339TimeConverter.TryParse(text, out _))
                {
                    return Fail(path, $"'{text}' is not a timestamp; write one such as 2025-03-30T01:30:00Z");
                }

                return node.DeepClone();
            case "integer":
                if (node.GetValueKind() != JsonValueKind.Number || !long.TryParse(node.ToJsonString(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var integer))
                {
                    return Mismatch(node, schema, path);
                }

                if (schema.Format == "int32" && integer is < int.MinValue or > int.MaxValue)
                {
                    return Fail(path, $"{integer.ToString(CultureInfo.InvariantCulture)} is out of range");
                }

                return node.DeepClone();
            case "boolean":
                return node.GetValueKind() is JsonValueKind.True or JsonValueKind.False ? node.DeepClone() : Mismatch(node, schema, path);
            default:
                return node.DeepClone();
        }
    }

    private JsonObject CheckObject(JsonObject obj, SchemaNode schema, string path)
    {
        var result = new JsonObject();
        foreach (var (key, value) in obj)
        {
            if (schema.AdditionalProperties is { } valueSchema)
            {
                var entryPath = $"{path}[{key}]";
                if (value is null)
                {
                    Fail(entryPath, $"expected {Expected(valueSchema)}, found null");
                    continue;
                }

                if (Check(value, valueSchema, entryPath) is { } checkedValue)
                {
                    result[key] = checkedValue;
                }

                continue;
            }

            var childPath = path.Length == 0 ? key : $"{path}.{key}";
            var child = schema.Property(key);
            if (child is null)
            {
                if (path != "metadata" || !ScheduledTaskSchema.IgnoredMetadataFields.Contains(key))
                {
                    _errors.Add(new FieldError(childPath, "unknown field" + Suggestion(key, schema)));
                }

                continue;
            }

            var checkedChild = Check(value, child, childPath);
            if (checkedChild is not null)
            {
                result[key] = checkedChild;
            }
        }

        foreach (var required in schema.Required ?? [])
        {
            if (obj[required] is null)
            {
                var requiredPath = path.Length == 0 ? required : $"{path}.{required}";
                if (!_removed.Contains(requiredPath))
                {
                    _errors.Add(new FieldError(requiredPath, "is required"));
                }
            }
        }

        return result;
    }

    private JsonArray? CheckArray(JsonArray array, SchemaNode schema, string path)
    {
        var result = new JsonArray();
        var errorsBefore = _errors.Count;
        for (var i = 0; i < array.Count; i++)
        {
            var item = array[i];
            var itemPath = $"{path}[{i}]";
            if (item is null)
            {
                Fail(itemPath, $"expected {Expected(schema.Items!)}, found null");
                continue;
            }

            result.Add(Check(item, schema.Items!, itemPath));
        }

        if (_errors.Count == errorsBefore)
        {
            return result;
        }

        // A list with a malformed entry is left out whole, so later checks do not see shifted indexes.
        _removed.Add(path);
        return null;
    }

    private JsonNode? Mismatch(JsonNode node, SchemaNode schema, string path) =>
        Fail(path, $"expected {Expected(schema)}, found {Found(node)}");

    private JsonNode? Fail(string path, string reason)
    {
        _errors.Add(new FieldError(path, reason));
        _removed.Add(path);
        return null;
    }

    private static string Expected(SchemaNode schema) => schema.Type switch
    {
        "object" when schema.AdditionalProperties is not null => "a mapping of names to values",
        "object" => "a mapping of fields",
        "array" => "a list",
        "string" when schema.Enum is not null => $"one of: {string.Join(", ", schema.Enum)}",
        "string" => "a string",
        "integer" => "an integer",
        "boolean" => "true or false",
        _ => schema.Type,
    };

    private static string Found(JsonNode node) => node switch
    {
        JsonObject => "a mapping",
        JsonArray => "a list",
        _ => node.GetValueKind() switch
        {
            JsonValueKind.String => $"the string '{node.GetValue<string>()}'",
            JsonValueKind.Number => $"the number {node.ToJsonString()}",
            JsonValueKind.True or JsonValueKind.False => $"the boolean {node.ToJsonString()}",
            _ => node.ToJsonString(),
        },
    };

    private static string Suggestion(string key, SchemaNode schema)
    {
        string? best = null;
        var bestDistance = int.MaxValue;
        foreach (var property in schema.Properties ?? [])
        {
            var distance = EditDistance(key.ToLowerInvariant(), property.Name.ToLowerInvariant());
            if (distance < bestDistance)
            {
                bestDistance = distance;
                best = property.Name;
            }
        }

        var allowed = best is null || best.Length <= 3 ? 1 : Math.Min(3, Math.Max(2, best.Length / 3));
        return best is not null && bestDistance <= allowed ? $" (did you mean {best}?)" : "";
    }

    private static int EditDistance(string a, string b)
    {
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++)
        {
            previous[j] = j;
        }

        for (var i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + cost);
            }

            (previous, current) = (current, previous);
        }

        return previous[b.Length];
    }
}
