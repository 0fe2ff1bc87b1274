using System.Globalization;
using System.Text.Json.Nodes;

namespace Dtask.Testing.Kubernetes;

/// <summary>
/// JSON Patch (RFC 6902), the <c>application/json-patch+json</c> content type: <c>add</c>, <c>remove</c>,
/// <c>replace</c>, <c>move</c>, <c>copy</c> and <c>test</c>, applied in order to a copy of the document.
/// </summary>
internal static class JsonPatchDocument
{
    /// <summary>A new document with every operation applied; throws <see cref="JsonPatchException"/> when one fails.</summary>
    public static JsonObject Apply(JsonObject target, JsonNode? operations)
    {
        if (operations is not JsonArray list)
        {
            throw new JsonPatchException("a JSON patch must be an array of operations");
        }

        var document = (JsonObject)target.DeepClone();
        foreach (var item in list)
        {
            if (item is not JsonObject operation)
            {
                throw new JsonPatchException("a JSON patch operation must be an object");
            }

            var op = Text(operation, "op");
            var path = Text(operation, "path");
            switch (op)
            {
                case "add":
                    Add(document, path, Value(operation));
                    break;
                case "remove":
                    Remove(document, path);
                    break;
                case "replace":
                    Remove(document, path);
                    Add(document, path, Value(operation));
                    break;
                case "move":
                    var moved = Get(document, Text(operation, "from"));
                    Remove(document, Text(operation, "from"));
                    Add(document, path, moved);
                    break;
                case "copy":
                    Add(document, path, Get(document, Text(operation, "from")));
                    break;
                case "test":
                    if (!JsonNode.DeepEquals(Get(document, path), Value(operation)))
                    {
                        throw new JsonPatchException($"test failed at {path}");
                    }

                    break;
                default:
                    throw new JsonPatchException($"unknown JSON patch operation \"{op}\"");
            }
        }

        return document;
    }

    private static string Text(JsonObject operation, string member) =>
        operation[member] is JsonValue value && value.TryGetValue<string>(out var text)
            ? text
            : throw new JsonPatchException($"a JSON patch operation needs \"{member}\"");

    private static JsonNode? Value(JsonObject operation) =>
        operation.ContainsKey("value") ? operation["value"]?.DeepClone() : throw new JsonPatchException("a JSON patch operation needs \"value\"");

    private static JsonNode? Get(JsonObject document, string path)
    {
        JsonNode? node = document;
        foreach (var token in Tokens(path))
        {
            node = node switch
            {
                JsonObject obj when obj.TryGetPropertyValue(token, out var child) => child,
                JsonArray array when Index(token, array.Count - 1) is var i => array[i],
                _ => throw new JsonPatchException($"no value at {path}"),
            };
        }

        return node?.DeepClone();
    }

    private static void Add(JsonObject document, string path, JsonNode? value)
    {
        var (parent, last) = Parent(document, path);
        switch (parent)
        {
            case JsonObject obj:
                obj[last] = value;
                break;
            case JsonArray array:
                array.Insert(last == "-" ? array.Count : Index(last, array.Count), value);
                break;
            default:
                throw new JsonPatchException($"cannot add at {path}");
        }
    }

    private static void Remove(JsonObject document, string path)
    {
        var (parent, last) = Parent(document, path);
        switch (parent)
        {
            case JsonObject obj when obj.ContainsKey(last):
                obj.Remove(last);
                break;
            case JsonArray array:
                array.RemoveAt(Index(last, array.Count - 1));
                break;
            default:
                throw new JsonPatchException($"no value at {path}");
        }
    }

    private static (JsonNode? Parent, string Last) Parent(JsonObject document, string path)
    {
        var tokens = Tokens(path);
        if (tokens.Count == 0)
        {
            throw new JsonPatchException("the whole document cannot be patched");
        }

        JsonNode? parent = document;
        foreach (var token in tokens.Take(tokens.Count - 1))
        {
            parent = parent switch
            {
                JsonObject obj when obj.TryGetPropertyValue(token, out var child) => child,
                JsonArray array => array[Index(token, array.Count - 1)],
                _ => throw new JsonPatchException($"no value at {path}"),
            };
        }

        return (parent, tokens[^1]);
    }

    private static List<string> Tokens(string path)
    {
        if (path.Length == 0)
        {
            return [];
        }

        if (path[0] != '/')
        {
            throw new JsonPatchException($"\"{path}\" is not a JSON pointer");
        }

        return [.. path[1..].Split('/').Select(t => t.Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal))];
    }

    private static int Index(string token, int max) =>
        int.TryParse(token, NumberStyles.None, CultureInfo.InvariantCulture, out var index) && index <= max
            ? index
            : throw new JsonPatchException($"\"{token}\" is not an index in range");
}

/// <summary>A JSON patch that cannot be applied.</summary>
internal sealed class JsonPatchException(string message) : Exception(message);
