using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;

namespace Dtask.Cli.Tests.Tasks;

/// <summary>
/// Manifests that once crashed or hung the tools, given to a real <c>dtask</c> process: each is one error naming the
/// file, the document, the line and the column, exit code 1, no stack trace, quickly; <c>apply</c> writes nothing.
/// </summary>
public sealed partial class HostileManifestProcessTests(TaskCommandsFixture consul) : IDisposable
{
    private static readonly TimeSpan Budget = TimeSpan.FromSeconds(60);
    private readonly TaskCli cli = new(consul);
    private readonly TempDirectory folder = new();
    private readonly TempDirectory good = new();
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose()
    {
        folder.Dispose();
        good.Dispose();
    }

    /// <summary>Ten levels of anchors, each a list of nine aliases of the previous: 9^10 nodes once expanded.</summary>
    private static string AliasBomb()
    {
        var yaml = new StringBuilder(Head + "  command: &a0 [\"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\"]\n");
        for (var level = 1; level < 10; level++)
        {
            yaml.Append($"  x{level}: &a{level} [{string.Join(", ", Enumerable.Repeat($"*a{level - 1}", 9))}]\n");
        }

        return yaml.ToString();
    }

    private const string Head = "apiVersion: dtask.dev/v1alpha1\nkind: ScheduledTask\nmetadata:\n  name: hostile\nspec:\n  every: 1m\n";

    public static TheoryData<string, string> Inputs() => new()
    {
        { "unclosed", "apiVersion: dtask.dev/v1alpha1\nkind: ScheduledTask\nmetadata: {name: a, namespace: b\nspec: [every: 1m\n" },
        { "deep", Head + "  command: " + new string('[', 50_000) + "\n" },
        { "bomb", AliasBomb() },
        { "scalar", Head + "  command: [\"" + new string('x', 1_000_000) + "\"]\n" },
        { "huge", Head + "  command: [\"true\"]\n" + string.Concat(Enumerable.Repeat("# " + new string('#', 1020) + "\n", 5 * 1024)) },
    };

    private static readonly Dictionary<string, string> Expected = new(StringComparer.Ordinal)
    {
        ["unclosed"] = "line 3, column 30: the YAML cannot be read past this point (Operation is not valid due to the current state of the object.) (the flow mapping opened at line 3, column 11 is not closed)",
        ["deep"] = "line 7, column 42: collections nest deeper than 32 levels",
        ["bomb"] = "line 12, column 12: more than 100000 nodes in one file (counting what each alias expands to)",
        ["scalar"] = "line 7, column 13: a scalar of 1000000 characters; the longest allowed is 131072",
        ["huge"] = "line 3082, column 912: the file is larger than 3 MiB, the most a manifest file may hold",
    };

    [Theory]
    [MemberData(nameof(Inputs))]
    public async Task Validate_apply_and_schedule_exit_1_naming_file_document_line_and_column(string kind, string yaml)
    {
        var file = folder.Write(kind + ".yaml", yaml);
        Assert.Equal(0, cli.Run("apply", "-f", good.Write("kept.yaml", TaskManifests.Yaml("ops", "kept"))).ExitCode);
        var before = await StateAsync();

        foreach (var command in (string[][])[["validate", "-f", file], ["apply", "-f", file, "--consul", consul.Address, "--prefix", cli.Layout.Prefix], ["schedule", "-f", file]])
        {
            var (exitCode, text, elapsed) = await RunAsync(command);

            Assert.True(exitCode == 1, $"dtask {command[0]} exited {exitCode}:\n{text}");
            Assert.True(text.Contains($"{file}[0] ?: invalid YAML: {Expected[kind]}", StringComparison.Ordinal), $"dtask {command[0]} printed:\n{text}");
            Assert.Matches(LineAndColumn(), text);
            Assert.DoesNotContain("Unhandled", text, StringComparison.Ordinal);
            Assert.DoesNotMatch(StackFrame(), text);
            TestContext.Current.TestOutputHelper?.WriteLine($"dtask {command[0]} on {kind}: exit {exitCode} in {elapsed.TotalMilliseconds:F0} ms");
        }

        Assert.Equal(before, await StateAsync());
    }

    [GeneratedRegex(@"invalid YAML: line \d+, column \d+: ")]
    private static partial Regex LineAndColumn();

    [GeneratedRegex(@"^\s+at \S+\(", RegexOptions.Multiline)]
    private static partial Regex StackFrame();

    /// <summary>Every key under the test's prefix with its ModifyIndex and value.</summary>
    private async Task<string> StateAsync()
    {
        var pairs = (await consul.Client.Kv.ListAsync(cli.Layout.Prefix, cancellationToken: Ct)).Value;
        return string.Join("\n", pairs.Select(p => $"{p.Key} {p.ModifyIndex} {p.ValueAsString()}"));
    }

    private static async Task<(int ExitCode, string Text, TimeSpan Elapsed)> RunAsync(string[] arguments)
    {
        var start = new ProcessStartInfo(DtaskBuild.DotnetHost())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in (string[])["exec", DtaskBuild.Dll(), .. arguments])
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment.Remove("CONSUL_HTTP_ADDR");
        var watch = Stopwatch.StartNew();
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync(Ct);
        var error = process.StandardError.ReadToEndAsync(Ct);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(Budget);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"dtask {arguments[0]} did not finish within {Budget}");
        }

        return (process.ExitCode, await output + await error, watch.Elapsed);
    }
}
