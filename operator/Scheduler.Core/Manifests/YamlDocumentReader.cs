using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace Dtask.Core.Manifests;

/// <summary>One YAML document as JSON, or the syntax error that stopped reading at it.</summary>
/// <param name="Index">Position of the document in its file, from 0.</param>
/// <param name="Content">The document; null for an empty document or when <paramref name="SyntaxError"/> is set.</param>
/// <param name="SyntaxError">Why the YAML could not be read (with line and column); no later document of the file is read.</param>
public sealed record YamlJsonDocument(int Index, JsonNode? Content, string? SyntaxError);

/// <summary>
/// Reads a YAML stream of one or many documents into JSON nodes with YamlDotNet's parser, resolving plain scalars by
/// the YAML 1.2 core schema (so <c>on</c> and <c>yes</c> stay strings, as Kubernetes reads them).
/// </summary>
public static partial class YamlDocumentReader
{
    /// <summary>Every document of <paramref name="yaml"/>, empty ones included; reading stops at the first syntax error.</summary>
    public static IReadOnlyList<YamlJsonDocument> Read(string yaml)
    {
        var documents = new List<YamlJsonDocument>();
        var parser = new Parser(new StringReader(yaml));
        var index = 0;
        try
        {
            parser.Consume<StreamStart>();
            while (!parser.Accept<StreamEnd>(out _))
            {
                parser.Consume<DocumentStart>();
                var anchors = new Dictionary<string, JsonNode?>(StringComparer.Ordinal);
                JsonNode? content = null;
                if (!parser.Accept<DocumentEnd>(out _))
                {
                    content = ReadNode(parser, anchors, "");
                }

                parser.Consume<DocumentEnd>();
                documents.Add(new YamlJsonDocument(index, content, null));
                index++;
            }
        }
        catch (YamlException e)
        {
            documents.Add(new YamlJsonDocument(index, null, Describe(e)));
        }

        return documents;
    }

    private static string Describe(YamlException e)
    {
        var message = e.InnerException is YamlException inner ? inner.Message : e.Message;
        var detail = message.Contains("): ", StringComparison.Ordinal) ? message[(message.IndexOf("): ", StringComparison.Ordinal) + 3)..] : message;
        return $"line {e.Start.Line}, column {e.Start.Column}: {detail}";
    }

    private static JsonNode? ReadNode(IParser parser, Dictionary<string, JsonNode?> anchors, string path)
    {
        if (parser.TryConsume<AnchorAlias>(out var alias))
        {
            return anchors.TryGetValue(alias.Value.Value, out var target)
                ? target?.DeepClone()
                : throw new YamlException(alias.Start, alias.End, $"unknown alias *{alias.Value.Value}");
        }

        if (parser.TryConsume<Scalar>(out var scalar))
        {
            var value = Resolve(scalar);
            Remember(anchors, scalar.Anchor, value);
            return value;
        }

        if (parser.TryConsume<SequenceStart>(out var sequenceStart))
        {
            var array = new JsonArray();
            while (!parser.TryConsume<SequenceEnd>(out _))
            {
                array.Add(ReadNode(parser, anchors, $"{path}[{array.Count}]"));
            }

            Remember(anchors, sequenceStart.Anchor, array);
            return array;
        }

        var mappingStart = parser.Consume<MappingStart>();
        var obj = new JsonObject();
        while (!parser.TryConsume<MappingEnd>(out _))
        {
            var keyEvent = parser.Current;
            if (!parser.TryConsume<Scalar>(out var key))
            {
                throw new YamlException(keyEvent!.Start, keyEvent.End, "a mapping key must be a plain word");
            }

            var childPath = path.Length == 0 ? key.Value : $"{path}.{key.Value}";
            var child = ReadNode(parser, anchors, childPath);
            if (!obj.TryAdd(key.Value, child))
            {
                throw new YamlException(key.Start, key.End, $"duplicate key '{childPath}'");
            }
        }

        Remember(anchors, mappingStart.Anchor, obj);
        return obj;
    }

    private static void Remember(Dictionary<string, JsonNode?> anchors, AnchorName anchor, JsonNode? value)
    {
        if (!anchor.IsEmpty)
        {
            anchors[anchor.Value] = value;
        }
    }

    private static JsonValue? Resolve(Scalar scalar)
    {
        var text = scalar.Value;
        if (!scalar.Tag.IsEmpty)
        {
            return scalar.Tag.Value switch
            {
                "tag:yaml.org,2002:str" => JsonValue.Create(text),
                "tag:yaml.org,2002:null" => null,
                _ => ResolvePlain(text),
            };
        }

        return scalar.Style is ScalarStyle.Plain ? ResolvePlain(text) : JsonValue.Create(text);
    }

    private static JsonValue? ResolvePlain(string text)
    {
        switch (text)
        {
            case "" or "~" or "null" or "Null" or "NULL":
                return null;
            case "true" or "True" or "TRUE":
                return JsonValue.Create(true);
            case "false" or "False" or "FALSE":
                return JsonValue.Create(false);
        }

        if (IntPattern().IsMatch(text) && long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var integer))
        {
            return JsonValue.Create(integer);
        }

        if (FloatPattern().IsMatch(text) && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var number))
        {
            return JsonValue.Create(number);
        }

        return JsonValue.Create(text);
    }

    [GeneratedRegex("^[-+]?[0-9]+$")]
    private static partial Regex IntPattern();

    [GeneratedRegex("^[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?$")]
    private static partial Regex FloatPattern();
}
