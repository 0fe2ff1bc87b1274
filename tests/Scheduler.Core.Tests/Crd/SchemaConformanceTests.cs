using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Dtask.Core.Crd;
using Dtask.Core.Manifests;
using Dtask.Core.Tests.Support;
using Json.Schema;

namespace Dtask.Core.Tests.Crd;

/// <summary>
/// The committed CRD's <c>openAPIV3Schema</c>, read back from the file and turned into JSON Schema 2020-12, judges the
/// examples and the invalid fixtures the way the API server would (with strict field validation). Each fixture says
/// in a <c># schema: rejects|accepts</c> line whether the CRD alone catches it; <c>accepts</c> marks the mistakes only
/// dtask's validator finds (cron syntax, time zones, DNS names in metadata, minimum periods).
/// </summary>
public sealed partial class SchemaConformanceTests
{
    private static readonly Lazy<JsonSchema> Schema = new(LoadSchema);

    private static readonly EvaluationOptions Options = new()
    {
        OutputFormat = OutputFormat.List,
        RequireFormatValidation = true,
    };

    public static TheoryData<string> Examples() => [.. RepoFiles.Yaml("examples")];

    public static TheoryData<string> Fixtures() => [.. RepoFiles.Yaml("tests/fixtures/invalid")];

    [Theory]
    [MemberData(nameof(Examples))]
    public void Every_example_is_valid_against_the_crd_schema(string example)
    {
        foreach (var document in YamlDocumentReader.Read(File.ReadAllText(RepoFiles.Path(example))).Where(d => d.Content is not null))
        {
            var result = Schema.Value.Evaluate(document.Content, Options);
            Assert.True(result.IsValid, $"{example}[{document.Index}]:\n{Describe(result)}");
        }
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void Each_invalid_fixture_meets_the_crd_schema_as_its_header_says(string fixture)
    {
        var text = File.ReadAllText(RepoFiles.Path(fixture));
        var marker = SchemaMarker().Match(text);
        Assert.True(marker.Success, $"{fixture} has no '# schema: rejects' or '# schema: accepts' line");

        var document = YamlDocumentReader.Read(text).Single(d => d.Content is not null);
        var result = Schema.Value.Evaluate(document.Content, Options);

        if (marker.Groups[1].Value == "rejects")
        {
            Assert.False(result.IsValid, $"{fixture}: the CRD schema accepts it, but the fixture says it rejects it");
        }
        else
        {
            Assert.True(result.IsValid, $"{fixture}: the CRD schema rejects it, but the fixture says only dtask's validator does:\n{Describe(result)}");
        }
    }

    [Theory]
    [InlineData("has(self.schedule) != has(self.every)", """{"oneOf":[{"required":["schedule"]},{"required":["every"]}]}""")]
    [InlineData("!self.name.startsWith('DTASK_')", """{"not":{"required":["name"],"properties":{"name":{"pattern":"^DTASK_"}}}}""")]
    public void Cel_rules_of_the_crd_translate_to_json_schema(string rule, string expected) =>
        Assert.Equal(expected, TranslateCel(rule).ToJsonString());

    private static JsonSchema LoadSchema()
    {
        var crd = YamlDocumentReader.Read(File.ReadAllText(RepoFiles.Path(CrdGenerator.CommittedPath))).Single().Content!;
        var openApi = crd["spec"]!["versions"]![0]!["schema"]!["openAPIV3Schema"]!;
        var converted = Convert(openApi)!.AsObject();
        converted.Insert(0, "$schema", "https://json-schema.org/draft/2020-12/schema");
        return JsonSchema.FromText(converted.ToJsonString());
    }

    /// <summary>
    /// OpenAPI v3 (as a CRD holds it) to JSON Schema 2020-12: <c>x-kubernetes-*</c> keywords are dropped, objects with
    /// <c>properties</c> refuse unknown fields, and the CEL rules become the equivalent JSON Schema.
    /// </summary>
    private static JsonNode? Convert(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject obj:
                var result = new JsonObject();
                var all = new JsonArray();
                foreach (var (key, value) in obj)
                {
                    if (key == "x-kubernetes-validations")
                    {
                        foreach (var rule in value!.AsArray())
                        {
                            all.Add(TranslateCel(rule!["rule"]!.GetValue<string>()));
                        }
                    }
                    else if (!key.StartsWith("x-kubernetes-", StringComparison.Ordinal))
                    {
                        result[key] = key is "properties" ? ConvertProperties(value!.AsObject()) : Convert(value);
                    }
                }

                if (obj.ContainsKey("properties") && !obj.ContainsKey("additionalProperties"))
                {
                    result["additionalProperties"] = false;
                }

                if (all.Count > 0)
                {
                    result["allOf"] = all;
                }

                return result;
            case JsonArray array:
                return new JsonArray([.. array.Select(Convert)]);
            default:
                return node?.DeepClone();
        }
    }

    private static JsonObject ConvertProperties(JsonObject properties)
    {
        var result = new JsonObject();
        foreach (var (name, schema) in properties)
        {
            result[name] = Convert(schema);
        }

        return result;
    }

    /// <summary>The CEL shapes this CRD uses; any other rule fails the test so it gets a translation here.</summary>
    private static JsonObject TranslateCel(string rule)
    {
        if (ExactlyOneRule().Match(rule) is { Success: true } exactlyOne)
        {
            return new JsonObject
            {
                ["oneOf"] = new JsonArray(
                    new JsonObject { ["required"] = new JsonArray(exactlyOne.Groups[1].Value) },
                    new JsonObject { ["required"] = new JsonArray(exactlyOne.Groups[2].Value) }),
            };
        }

        if (NotStartsWithRule().Match(rule) is { Success: true } notPrefix)
        {
            var field = notPrefix.Groups[1].Value;
            return new JsonObject
            {
                ["not"] = new JsonObject
                {
                    ["required"] = new JsonArray(field),
                    ["properties"] = new JsonObject { [field] = new JsonObject { ["pattern"] = "^" + Regex.Escape(notPrefix.Groups[2].Value) } },
                },
            };
        }

        throw new InvalidOperationException($"no JSON Schema translation for the CEL rule '{rule}'");
    }

    private static string Describe(EvaluationResults result) =>
        string.Join("\n", result.Details
            .Where(d => d.Errors is { Count: > 0 })
            .SelectMany(d => d.Errors!.Select(e => $"  {d.InstanceLocation}: {e.Key}: {e.Value}")));

    [GeneratedRegex(@"^# schema: (rejects|accepts)\s*$", RegexOptions.Multiline)]
    private static partial Regex SchemaMarker();

    [GeneratedRegex(@"^has\(self\.(\w+)\) != has\(self\.(\w+)\)$")]
    private static partial Regex ExactlyOneRule();

    [GeneratedRegex(@"^!self\.(\w+)\.startsWith\('([^']*)'\)$")]
    private static partial Regex NotStartsWithRule();
}
