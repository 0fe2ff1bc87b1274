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
/// the YAML 1.2 core schema (so <c>on</c> and <c>yes</c> stay strings, as Kubernetes reads them). The events are
/// walked iteratively (an explicit stack, no recursion) within <see cref="YamlLimits"/>: a file too large, too deep,
/// with too many aliases or nodes (aliases counted as what they expand to) or too long a scalar stops at the event
/// that crossed the bound, before anything beyond it is built. Any failure of the parser, whatever its type, becomes
/// the <see cref="YamlJsonDocument.SyntaxError"/> of the document it stopped at.
/// </summary>
public static partial class YamlDocumentReader
{
    /// <summary>Every document of <paramref name="yaml"/>, empty ones included; reading stops at the first syntax error or exceeded limit.</summary>
    public static IReadOnlyList<YamlJsonDocument> Read(string yaml) => Read(yaml, YamlLimits.Default);

    /// <summary>Every document of <paramref name="yaml"/> read within <paramref name="limits"/>; reading stops at the first syntax error or exceeded limit.</summary>
    public static IReadOnlyList<YamlJsonDocument> Read(string yaml, YamlLimits limits)
    {
        ArgumentNullException.ThrowIfNull(yaml);
        ArgumentNullException.ThrowIfNull(limits);
        var documents = new List<YamlJsonDocument>();
        if (TooLarge(yaml, limits.MaxFileBytes) is { } tooLarge)
        {
            documents.Add(new YamlJsonDocument(0, null, tooLarge));
            return documents;
        }

        var reader = new BoundedReader(new Parser(new StringReader(yaml)), limits);
        var index = 0;
        try
        {
            reader.Parser.Consume<StreamStart>();
            while (!reader.Parser.Accept<StreamEnd>(out _))
            {
                reader.Parser.Consume<DocumentStart>();
                JsonNode? content = null;
                if (!reader.Parser.Accept<DocumentEnd>(out _))
                {
                    content = reader.ReadDocument();
                }

                reader.Parser.Consume<DocumentEnd>();
                documents.Add(new YamlJsonDocument(index, content, null));
                index++;
            }
        }
        catch (YamlException e)
        {
            documents.Add(new YamlJsonDocument(index, null, Describe(e, reader)));
        }
#pragma warning disable CA1031 // Whatever the parser throws, the file is invalid: one error, never a crash.
        catch (Exception e) when (e is not OutOfMemoryException)
#pragma warning restore CA1031
        {
            documents.Add(new YamlJsonDocument(index, null, $"line {reader.Position.Line}, column {reader.Position.Column}: the YAML cannot be read past this point ({e.Message}){reader.OpenFlow()}"));
        }

        return documents;
    }

    /// <summary>The error of a text larger than <paramref name="maxBytes"/> UTF-8 bytes, at the line and column where it crosses the bound; null when it is within.</summary>
    private static string? TooLarge(string yaml, long maxBytes)
    {
        if (yaml.Length <= maxBytes / 3 || System.Text.Encoding.UTF8.GetByteCount(yaml) <= maxBytes)
        {
            return null;
        }

        long bytes = 0;
        int line = 1, column = 1;
        for (var i = 0; i < yaml.Length; i++)
        {
            var c = yaml[i];
            bytes += c < 0x80 ? 1 : c < 0x800 ? 2 : char.IsHighSurrogate(c) ? 4 : char.IsLowSurrogate(c) ? 0 : 3;
            if (bytes > maxBytes)
            {
                break;
            }

            if (c == '\n')
            {
                line++;
                column = 1;
            }
            else
            {
                column++;
            }
        }

        return $"line {line}, column {column}: the file is larger than {Size(maxBytes)}, the most a manifest file may hold";
    }

    private static string Size(long bytes) => bytes % (1024 * 1024) == 0 ? $"{bytes / (1024 * 1024)} MiB" : bytes % 1024 == 0 ? $"{bytes / 1024} KiB" : $"{bytes} bytes";

    private static string Describe(YamlException e, BoundedReader reader)
    {
        var message = e.InnerException is YamlException inner ? inner.Message : e.Message;
        var detail = message.Contains("): ", StringComparison.Ordinal) ? message[(message.IndexOf("): ", StringComparison.Ordinal) + 3)..] : message;
        return $"line {e.Start.Line}, column {e.Start.Column}: {detail}{(e is LimitException ? "" : reader.OpenFlow())}";
    }

    /// <summary>A bound of <see cref="YamlLimits"/> crossed at an event.</summary>
    private sealed class LimitException(Mark start, Mark end, string message) : YamlException(start, end, message);

    /// <summary>An anchored node: its value, how many nodes it stands for and how deep it is.</summary>
    private sealed record Anchored(JsonNode? Value, int Nodes, int Height);

    /// <summary>An open sequence or mapping.</summary>
    private sealed class Frame(JsonNode container, AnchorName anchor, Mark start, bool flow, string path, int nodesBefore)
    {
        public JsonNode Container { get; } = container;

        public AnchorName Anchor { get; } = anchor;

        public Mark Start { get; } = start;

        public bool Flow { get; } = flow;

        public string Path { get; } = path;

        public int NodesBefore { get; } = nodesBefore;

        public int Height { get; set; }

        /// <summary>For a mapping: the key read, waiting for its value.</summary>
        public Scalar? Key { get; set; }
    }

    /// <summary>Walks one stream's events with an explicit stack, counting against the limits.</summary>
    private sealed class BoundedReader(Parser parser, YamlLimits limits)
    {
        private readonly Stack<Frame> open = new();
        private Dictionary<string, Anchored> anchors = new(StringComparer.Ordinal);
        private int nodes;
        private int aliases;

        public Parser Parser { get; } = parser;

        /// <summary>Where the last event read ended: the best position to name when the scanner fails without one.</summary>
        public Mark Position { get; private set; } = Mark.Empty;

        /// <summary>A note naming the innermost open flow collection (an unclosed <c>{</c> or <c>[</c>), or empty.</summary>
        public string OpenFlow() =>
            open.FirstOrDefault(f => f.Flow) is { } flow
                ? $" (the flow {(flow.Container is JsonArray ? "sequence" : "mapping")} opened at line {flow.Start.Line}, column {flow.Start.Column} is not closed)"
                : "";

        public JsonNode? ReadDocument()
        {
            anchors = new Dictionary<string, Anchored>(StringComparer.Ordinal);
            open.Clear();
            while (true)
            {
                var parsingEvent = Parser.Current ?? throw new YamlException(Position, Position, "unexpected end of the stream");
                Position = parsingEvent.End;
                var path = open.TryPeek(out var parent) ? ChildPath(parent) : "";
                JsonNode? value;
                int height;
                switch (parsingEvent)
                {
                    case SequenceEnd or MappingEnd:
                    {
                        Parser.MoveNext();
                        var closed = open.Pop();
                        value = closed.Container;
                        height = closed.Height + 1;
                        Remember(closed.Anchor, value, nodes - closed.NodesBefore + 1, height);
                        break;
                    }

                    case Scalar scalar:
                    {
                        Parser.MoveNext();
                        if (scalar.Value.Length > limits.MaxScalarLength)
                        {
                            throw new LimitException(scalar.Start, scalar.End,
                                $"a scalar of {scalar.Value.Length} characters; the longest allowed is {limits.MaxScalarLength}");
                        }

                        Count(1, scalar);
                        if (parent?.Container is JsonObject && parent.Key is null)
                        {
                            parent.Key = scalar;
                            continue;
                        }

                        value = Resolve(scalar);
                        height = 0;
                        Remember(scalar.Anchor, value, 1, 0);
                        break;
                    }

                    case AnchorAlias alias:
                    {
                        Parser.MoveNext();
                        if (parent?.Container is JsonObject && parent.Key is null)
                        {
                            throw new YamlException(alias.Start, alias.End, "a mapping key must be a plain word");
                        }

                        if (++aliases > limits.MaxAliases)
                        {
                            throw new LimitException(alias.Start, alias.End, $"more than {limits.MaxAliases} aliases in one file");
                        }

                        if (!anchors.TryGetValue(alias.Value.Value, out var target))
                        {
                            throw new YamlException(alias.Start, alias.End, $"unknown alias *{alias.Value.Value}");
                        }

                        if (open.Count + target.Height > limits.MaxDepth)
                        {
                            throw new LimitException(alias.Start, alias.End,
                                $"the alias *{alias.Value.Value} nests deeper than {limits.MaxDepth} levels where it is used");
                        }

                        Count(target.Nodes, alias);
                        value = target.Value?.DeepClone();
                        height = target.Height;
                        break;
                    }

                    case NodeEvent start and (SequenceStart or MappingStart):
                    {
                        Parser.MoveNext();
                        if (parent?.Container is JsonObject && parent.Key is null)
                        {
                            throw new YamlException(start.Start, start.End, "a mapping key must be a plain word");
                        }

                        if (open.Count + 1 > limits.MaxDepth)
                        {
                            throw new LimitException(start.Start, start.End, $"collections nest deeper than {limits.MaxDepth} levels");
                        }

                        Count(1, start);
                        var flow = start is SequenceStart { Style: SequenceStyle.Flow } || start is MappingStart { Style: MappingStyle.Flow };
                        open.Push(new Frame(start is SequenceStart ? new JsonArray() : new JsonObject(), start.Anchor, start.Start, flow, path, nodes));
                        continue;
                    }

                    default:
                        throw new YamlException(parsingEvent.Start, parsingEvent.End, $"unexpected {parsingEvent.GetType().Name}");
                }

                if (!open.TryPeek(out var into))
                {
                    return value;
                }

                into.Height = Math.Max(into.Height, height);
                if (into.Container is JsonArray array)
                {
                    array.Add(value);
                }
                else
                {
                    var key = into.Key!;
                    into.Key = null;
                    if (!((JsonObject)into.Container).TryAdd(key.Value, value))
                    {
                        throw new YamlException(key.Start, key.End, $"duplicate key '{(into.Path.Length == 0 ? key.Value : $"{into.Path}.{key.Value}")}'");
                    }
                }
            }
        }

        private static string ChildPath(Frame parent) => parent.Container switch
        {
            JsonArray array => $"{parent.Path}[{array.Count}]",
            _ when parent.Key is { } key => parent.Path.Length == 0 ? key.Value : $"{parent.Path}.{key.Value}",
            _ => parent.Path,
        };

        private void Count(int more, ParsingEvent at)
        {
            if ((long)nodes + more > limits.MaxNodes)
            {
                throw new LimitException(at.Start, at.End,
                    $"more than {limits.MaxNodes} nodes in one file{(at is AnchorAlias ? " (counting what each alias expands to)" : "")}");
            }

            nodes += more;
        }

        private void Remember(AnchorName anchor, JsonNode? value, int count, int height)
        {
            if (!anchor.IsEmpty)
            {
                anchors[anchor.Value] = new Anchored(value, count, height);
            }
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
