using System.Globalization;
using System.Text;
using YamlDotNet.RepresentationModel;

namespace Dtask.Deploy.Tests.Support;

/// <summary>Small helpers over YamlDotNet's representation model.</summary>
internal static class Yaml
{
    public static IReadOnlyList<YamlMappingNode> LoadDocuments(string text)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(text));
        return stream.Documents
            .Where(d => d.RootNode is not YamlScalarNode { Value: null or "" })
            .Select(d => Assert.IsType<YamlMappingNode>(d.RootNode))
            .ToList();
    }

    public static YamlMappingNode LoadSingle(string text) => Assert.Single(LoadDocuments(text));

    /// <summary>The node at a dotted path of mapping keys, or null.</summary>
    public static YamlNode? At(this YamlNode node, string path)
    {
        YamlNode? current = node;
        foreach (var key in path.Split('.'))
        {
            if (current is not YamlMappingNode mapping || !mapping.Children.TryGetValue(new YamlScalarNode(key), out current))
            {
                return null;
            }
        }

        return current;
    }

    public static string? Scalar(this YamlNode node, string path) => (node.At(path) as YamlScalarNode)?.Value;

    public static IReadOnlyList<YamlNode> Sequence(this YamlNode node, string path) =>
        node.At(path) is YamlSequenceNode sequence ? sequence.Children.ToList() : [];

    public static IReadOnlyList<string> Strings(this YamlNode node, string path) =>
        node.Sequence(path).Select(n => ((YamlScalarNode)n).Value ?? "").ToList();

    /// <summary>A canonical text of a node: mapping keys sorted, so documents compare by content.</summary>
    public static string Canonical(YamlNode node)
    {
        var text = new StringBuilder();
        Write(node, text);
        return text.ToString();
    }

    private static void Write(YamlNode node, StringBuilder text)
    {
        switch (node)
        {
            case YamlScalarNode scalar:
                text.Append('"').Append(scalar.Value).Append('"');
                break;
            case YamlSequenceNode sequence:
                text.Append('[');
                foreach (var child in sequence.Children)
                {
                    Write(child, text);
                    text.Append(',');
                }

                text.Append(']');
                break;
            case YamlMappingNode mapping:
                text.Append('{');
                foreach (var (key, value) in mapping.Children.OrderBy(c => ((YamlScalarNode)c.Key).Value, StringComparer.Ordinal))
                {
                    text.Append(CultureInfo.InvariantCulture, $"{((YamlScalarNode)key).Value}:");
                    Write(value, text);
                    text.Append(',');
                }

                text.Append('}');
                break;
            default:
                throw new InvalidOperationException($"unexpected YAML node {node.NodeType}");
        }
    }
}
