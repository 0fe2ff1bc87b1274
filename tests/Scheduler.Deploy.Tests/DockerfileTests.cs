using Dtask.Deploy.Tests.Support;

namespace Dtask.Deploy.Tests;

/// <summary>The Dockerfile, read (no container engine here to build it).</summary>
public sealed class DockerfileTests
{
    private static readonly IReadOnlyList<string> Instructions = RepositoryFiles.ReadText("Dockerfile")
        .Replace("\\\n", " ", StringComparison.Ordinal)
        .Split('\n')
        .Select(l => l.Trim())
        .Where(l => l.Length > 0 && !l.StartsWith('#'))
        .ToList();

    [Fact]
    public void The_build_is_multi_stage_from_the_SDK_to_runtime_deps()
    {
        var stages = Instructions.Where(i => i.StartsWith("FROM ", StringComparison.Ordinal)).ToList();

        Assert.True(stages.Count >= 2, "one FROM only");
        Assert.Contains("mcr.microsoft.com/dotnet/sdk:10.0", stages[0], StringComparison.Ordinal);
        Assert.Contains("mcr.microsoft.com/dotnet/runtime-deps:10.0", stages[^1], StringComparison.Ordinal);
        Assert.Contains(Instructions, i => i.StartsWith("COPY --from=build ", StringComparison.Ordinal));
        Assert.Contains(Instructions, i => i.Contains("--self-contained", StringComparison.Ordinal) && i.Contains("PublishSingleFile=true", StringComparison.Ordinal));
    }

    [Fact]
    public void The_image_runs_dtask_as_a_non_root_user()
    {
        var finalStage = Instructions.Skip(Instructions.ToList().FindLastIndex(i => i.StartsWith("FROM ", StringComparison.Ordinal))).ToList();
        var user = finalStage.Last(i => i.StartsWith("USER ", StringComparison.Ordinal))["USER ".Length..].Trim();

        Assert.DoesNotContain(user.Split(':')[0], new[] { "root", "0" });
        Assert.Equal("ENTRYPOINT [\"/usr/local/bin/dtask\"]", finalStage.Last(i => i.StartsWith("ENTRYPOINT", StringComparison.Ordinal)));
    }

    [Fact]
    public void Build_outputs_stay_out_of_the_context()
    {
        var ignored = RepositoryFiles.ReadText(".dockerignore").Split('\n').Select(l => l.Trim()).ToList();

        Assert.Contains("**/bin/", ignored);
        Assert.Contains("**/obj/", ignored);
        Assert.Contains("artifacts/", ignored);
    }
}
