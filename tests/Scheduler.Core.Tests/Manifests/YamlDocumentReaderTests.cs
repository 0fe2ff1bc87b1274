using System.Text.Json.Nodes;
using Dtask.Core.Manifests;

namespace Dtask.Core.Tests.Manifests;

public sealed class YamlDocumentReaderTests
{
    public static TheoryData<string, string, string> Scalars() => new()
    {
        { "a plain word stays a string", "a: hello", """{"a":"hello"}""" },
        { "on and yes stay strings (YAML 1.2)", "on: yes", """{"on":"yes"}""" },
        { "true is a boolean", "a: true", """{"a":true}""" },
        { "a quoted true is a string", "a: \"true\"", """{"a":"true"}""" },
        { "an integer", "a: 42", """{"a":42}""" },
        { "a quoted integer is a string", "a: '42'", """{"a":"42"}""" },
        { "a negative duration stays a string", "a: -5m", """{"a":"-5m"}""" },
        { "tilde and empty are null", "a: ~\nb:", """{"a":null,"b":null}""" },
        { "a cron expression stays a string", "a: 30 2 * * *", """{"a":"30 2 * * *"}""" },
        { "a flow list", "a: [x, 1]", """{"a":["x",1]}""" },
        { "an alias copies its anchor", "a: &x {b: 1}\nc: *x", """{"a":{"b":1},"c":{"b":1}}""" },
        { "a literal block keeps its newline", "a: |\n  echo hi\n", """{"a":"echo hi\n"}""" },
        { "an explicit str tag wins", "a: !!str 10", """{"a":"10"}""" },
    };

    [Theory]
    [MemberData(nameof(Scalars))]
    public void Scalars_resolve_like_kubernetes_reads_them(string row, string yaml, string json)
    {
        _ = row;
        var document = Assert.Single(YamlDocumentReader.Read(yaml));

        Assert.Null(document.SyntaxError);
        Assert.Equal(json, document.Content!.ToJsonString());
    }

    [Fact]
    public void Documents_are_numbered_from_zero_including_empty_ones()
    {
        var documents = YamlDocumentReader.Read("a: 1\n---\n---\nb: 2\n");

        Assert.Equal([0, 1, 2], documents.Select(d => d.Index));
        Assert.Null(documents[1].Content);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""{"b":2}"""), documents[2].Content));
    }
}
