using Dtask.Testing;

namespace Dtask.Chaos.Tests;

/// <summary>
/// The short chaos run of <c>make test</c>: three Consul servers, five executor processes, 60 s of tasks at 1-2 s
/// periods with one executor SIGKILL and restart and one leader kill and restart; every invariant must hold.
/// </summary>
public sealed class ShortChaosRunTests
{
    [Fact(Timeout = 240_000)]
    public async Task Sixty_seconds_of_faults_break_no_invariant()
    {
        ConsulBinary.Locate();
        using var output = new StringWriter();
        var options = new ChaosOptions
        {
            Duration = TimeSpan.FromSeconds(60),
            DtaskDll = DtaskBuild.Dll(),
            DotnetHost = DtaskBuild.DotnetHost(),
        };

        var result = await new ChaosRunner(options, TextWriter.Synchronized(output), TimeProvider.System).RunAsync(TestContext.Current.CancellationToken);

        TestContext.Current.TestOutputHelper?.WriteLine(output.ToString());
        Assert.True(result.Report.Tasks.Sum(t => t.Ran) > 50, "too few runs to judge:\n" + output);
        Assert.True(result.Passed, "chaos invariants violated:\n" + output);
    }
}
