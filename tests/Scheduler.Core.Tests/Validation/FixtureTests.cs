using Dtask.Core.Manifests;
using Dtask.Core.Tests.Support;

namespace Dtask.Core.Tests.Validation;

/// <summary>
/// Every file of <c>tests/fixtures/invalid</c> holds one document and, in its header, the errors it must produce:
/// one <c># expect: path: reason</c> line per error, in order. An expected line may stop early (<c># expect: spec.schedule:</c>)
/// where the wording belongs to the schedule parser.
/// </summary>
public sealed class FixtureTests
{
    public static TheoryData<string> Fixtures() => [.. RepoFiles.Yaml("tests/fixtures/invalid")];

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void Each_invalid_fixture_gives_exactly_its_expected_errors(string fixture)
    {
        var text = File.ReadAllText(RepoFiles.Path(fixture));
        var expected = text.Split('\n')
            .Where(l => l.StartsWith("# expect: ", StringComparison.Ordinal))
            .Select(l => l["# expect: ".Length..].TrimEnd('\r'))
            .ToList();
        Assert.NotEmpty(expected);

        var document = Assert.Single(ManifestReader.ReadText(text, fixture));
        var actual = document.Errors.Select(e => e.ToString()).ToList();

        Assert.False(document.IsValid);
        Assert.True(
            actual.Count == expected.Count && actual.Zip(expected).All(p => p.First.StartsWith(p.Second, StringComparison.Ordinal)),
            $"{fixture}\nexpected:\n  {string.Join("\n  ", expected)}\nactual:\n  {string.Join("\n  ", actual)}");
    }

    [Fact]
    public void There_is_a_fixture_for_each_kind_of_mistake() => Assert.True(Fixtures().Count >= 20);
}
