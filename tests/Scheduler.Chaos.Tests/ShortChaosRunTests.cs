using Dtask.Chaos.Faults;
using Dtask.Chaos.Hosts;
using Dtask.Testing;

namespace Dtask.Chaos.Tests;

/// <summary>
/// The short chaos run of <c>make test</c>: three Consul servers, five executor processes each in its own network
/// namespace behind its gateway, node-5 (and its agent) 30 s ahead under libfaketime, 50 s of tasks at 1-2 s periods
/// with the holder of the long task cut off from Consul past its session TTL, one lost claim answer, one leader kill and
/// one executor SIGKILL; every invariant must hold. The tools it needs are installed by <c>scripts/install-chaos-tools.sh</c>
/// (<c>make test</c> runs it); without them it fails, naming the missing tool.
/// </summary>
public sealed class ShortChaosRunTests
{
    [Fact(Timeout = 240_000)]
    public async Task Fifty_seconds_of_partitions_lost_answers_skewed_clocks_and_kills_break_no_invariant()
    {
        ConsulBinary.Locate();
        ChaosTools.Find();
        using var output = new StringWriter();
        var options = new ChaosOptions
        {
            Duration = TimeSpan.FromSeconds(50),
            DtaskDll = DtaskBuild.Dll(),
            DotnetHost = DtaskBuild.DotnetHost(),
            Seed = 11,
            Tasks = Workload.ChaosWorkload.DefaultTasks,
            // The steady state: the tasks come once node-5's skew guard holds. Its first seconds, before it has a
            // reference besides its own agent, are what `make chaos` attacks (the tasks there are in KV before any
            // executor starts).
            TasksBeforeExecutors = false,
        };

        var result = await new ChaosRunner(options, TextWriter.Synchronized(output), TimeProvider.System).RunAsync(TestContext.Current.CancellationToken);

        TestContext.Current.TestOutputHelper?.WriteLine(output.ToString());
        Assert.True(result.Report.Tasks.Sum(t => t.Ran) > 50, "too few runs to judge:\n" + output);
        var faults = result.Report.Faults;
        Assert.True(faults.Any(f => f.Kind == FaultKind.HolderPartition && f.Detail.StartsWith("holds ", StringComparison.Ordinal)
            && f.End - f.Start > options.SessionTtl * 2), "no holder was cut off past its TTL:\n" + output);
        Assert.True(faults.Any(f => f.Kind == FaultKind.LostClaimAnswer && f.Detail.StartsWith("claim transaction", StringComparison.Ordinal)), "no claim answer was lost:\n" + output);
        Assert.Contains(faults, f => f.Kind == FaultKind.ExecutorKill);
        Assert.Contains(faults, f => f.Kind == FaultKind.LeaderKill);
        Assert.Contains(faults, f => f.Kind == FaultKind.ClockOffset && f.Target == "node-5" && f.ClockOffsetSeconds == 30);
        Assert.True(result.Passed, "chaos invariants violated:\n" + output);
    }
}
