using System.Text;
using Dtask.Bench.Consul;
using Dtask.Bench.Processes;
using Dtask.Bench.Report;
using Dtask.Bench.Workload;
using Dtask.Consul.Kv;

namespace Dtask.Bench.Tests;

/// <summary>A fast smoke test of the benchmark harness: how it counts, and that it counts writes on a real agent.</summary>
public sealed class HarnessTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public void Witness_lines_give_latency_duplicates_and_missed_slots()
    {
        WitnessLine[] lines =
        [
            new("t-1", 100, "a", 100.012),
            new("t-1", 100, "b", 100.030),
            new("t-1", 101, "a", 101.020),
            new("t-2", 100, "c", 100.005),
            new("t-2", 99, "c", 99.001),
            new("other", 100, "c", 100.001),
        ];

        var tally = FireTally.Of(lines, ["t-1", "t-2"], firstSlot: 100, lastSlot: 101);

        Assert.Equal(4, tally.Expected);
        Assert.Equal(3, tally.Fired);
        Assert.Equal(4, tally.Runs);
        Assert.Equal(1, tally.Duplicates);
        Assert.Equal(1, tally.SlotsWithDuplicates);
        Assert.Equal(1, tally.Missed);
        Assert.Equal([5, 12, 20], tally.LatenciesMs.Select(l => Math.Round(l)).Order());
    }

    [Theory]
    [InlineData("GET", "/v1/kv/bench/state/ns/t/run?stale=", "FirePath", false)]
    [InlineData("GET", "/v1/kv/bench/state/ns/t/history/?keys=&separator=%2F", "FirePath", false)]
    [InlineData("PUT", "/v1/txn", "FirePath", true)]
    [InlineData("PUT", "/v1/txn?consistent=", "FirePath", false)]
    [InlineData("GET", "/v1/kv/bench/nodes/?recurse=&index=5&wait=300000ms", "Membership", false)]
    [InlineData("PUT", "/v1/kv/bench/nodes/node-1?acquire=abc", "Membership", false)]
    [InlineData("PUT", "/v1/session/renew/abc", "Sessions", false)]
    [InlineData("GET", "/v1/kv/bench/tasks/?recurse=&index=9", "Other", false)]
    public void The_agents_requests_are_told_apart_by_their_url(string method, string url, string kindName, bool write)
    {
        var kind = Enum.Parse<RequestKind>(kindName);
        var tally = new RequestTally();
        tally.Read($"    2026-12-06T01:02:12.887Z [DEBUG] agent.http: Request finished: method={method} url={url} from=127.0.0.1:54392 latency=76.876µs");
        tally.Read("    2026-12-06T01:02:12.888Z [INFO]  agent: Synced node info");

        Assert.Equal(1, tally.Snapshot()[kind]);
        Assert.Equal(1, tally.Snapshot().Values.Sum());
        Assert.Equal(write ? 1 : 0, tally.FirePathWrites);
    }

    [Theory]
    [InlineData("GET", "/v1/kv/bench/state/ns/t/run?stale=", "StaleRead")]
    [InlineData("GET", "/v1/kv/bench/state/ns/t/run?consistent=", "ConsistentRead")]
    [InlineData("PUT", "/v1/txn?consistent=", "ConsistentRead")]
    [InlineData("PUT", "/v1/txn", "Transaction")]
    [InlineData("GET", "/v1/kv/bench/state/ns/t/history/?keys=&separator=%2F", "HistoryListing")]
    [InlineData("GET", "/v1/kv/bench/state/ns/t/history/1900000000", "Other")]
    public void A_fire_paths_requests_are_profiled_by_part(string method, string url, string partName)
    {
        var tally = new RequestTally();
        var before = tally.FirePathParts();
        tally.Read($"    2026-12-06T01:02:12.887Z [DEBUG] agent.http: Request finished: method={method} url={url} from=127.0.0.1:54392 latency=76.876µs");
        tally.Read($"    2026-12-06T01:02:12.887Z [DEBUG] agent.http: Request finished: method=PUT url=/v1/session/renew/abc from=127.0.0.1:54392 latency=76.876µs");

        var after = tally.FirePathParts();
        Assert.Equal(1, after[Enum.Parse<FirePathPart>(partName)]);
        Assert.Equal(1, after.Values.Sum());
        Assert.Contains(" 0.50", RequestTally.Profile(before, after, fires: 2), StringComparison.Ordinal);
    }

    [Fact]
    public void Percentiles_are_nearest_rank()
    {
        var d = Distribution.Of(Enumerable.Range(1, 200).Select(i => (double)i))!;

        Assert.Equal(100, d.Median);
        Assert.Equal(198, d.P99);
        Assert.Equal(200, d.Max);
        Assert.Null(Distribution.Of([]));
    }

    [Fact]
    public void A_spawn_figure_is_compared_with_the_executors_figure_of_the_same_setup()
    {
        Figure[] figures =
        [
            new("spawn", "start", "dtask", "/bin/true, serial", "ms", Median: 10),
            new("spawn", "start", "dtask", "/bin/true, herd", "ms", Median: 40),
            new("spawn", "start", "posix-spawn", "/bin/true, serial", "ms", Median: 5),
            new("spawn", "start", "posix-spawn", "/bin/true, herd", "ms", Median: 10),
        ];

        var rows = FigureTable.Rows([new ScenarioResult("spawn", 1, figures, [], [], [])]);

        Assert.Equal([null, null, 0.5, 0.25], rows.Select(r => r.Ratio));
    }

    [Fact]
    public void The_report_page_keeps_every_other_section()
    {
        var page = "# Benchmarks\n\nintro\n\n" + MarkdownReport.Begin + "\nold figures\n" + MarkdownReport.End + "\n\n## Chaos\n\nchaos figures\n";

        var merged = MarkdownReport.Merge(page, MarkdownReport.Begin + "\nnew figures\n" + MarkdownReport.End);

        Assert.Contains("new figures", merged, StringComparison.Ordinal);
        Assert.DoesNotContain("old figures", merged, StringComparison.Ordinal);
        Assert.EndsWith("## Chaos\n\nchaos figures\n", merged, StringComparison.Ordinal);
        Assert.StartsWith("# Benchmarks\n\nintro", merged, StringComparison.Ordinal);

        var chaosOnly = MarkdownReport.Merge("# Benchmarks\n\n## Chaos\n\nchaos figures\n", MarkdownReport.Begin + "\nfigures\n" + MarkdownReport.End);
        Assert.Contains("## Chaos\n\nchaos figures", chaosOnly, StringComparison.Ordinal);
        Assert.True(chaosOnly.IndexOf("figures\n" + MarkdownReport.End, StringComparison.Ordinal) < chaosOnly.IndexOf("## Chaos", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_agent_counts_one_raft_apply_per_write_and_every_request()
    {
        await using var consul = await ConsulUnderTest.StartAsync(Ct);
        var before = await consul.Metrics.ReadAsync(Ct);

        for (var i = 0; i < 5; i++)
        {
            await consul.Client.Kv.PutAsync($"smoke/k{i}", Encoding.UTF8.GetBytes("v"), cancellationToken: Ct);
        }

        await consul.Client.Kv.PutAsync("smoke/k0", Encoding.UTF8.GetBytes("w"), new KvPutOptions { Cas = 1 }, Ct);
        await consul.Client.Kv.GetAsync("smoke/k0", cancellationToken: Ct);
        var spent = (await consul.Metrics.ReadAsync(Ct)).Since(before);

        Assert.InRange(spent.RaftApplies, 6, 7);
        Assert.Equal(6, spent.KvApplies);
        Assert.InRange(spent.HttpRequests, 7, 8);
    }
}
