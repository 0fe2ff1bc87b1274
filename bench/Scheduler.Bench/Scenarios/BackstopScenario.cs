using System.Diagnostics;
using System.Globalization;
using Dtask.Bench.Consul;
using Dtask.Bench.Executors;
using Dtask.Bench.Report;
using Dtask.Bench.Workload;
using Dtask.Consul.Configuration;
using Dtask.Core.Model;
using Dtask.Executor.Daemon;

namespace Dtask.Bench.Scenarios;

/// <summary>
/// The backstop at fleet size: 30 and 300 in-process executors (<c>BENCH_BACKSTOP_SIZES</c>), 20 tasks every 10 s,
/// all due at the same instants. Each executor reaches the agent through a forwarder of its own. Up to half the fleet,
/// chosen with the executors' own rendezvous ranking so that half the tasks' next slot has its first K ranked nodes in
/// it, is cut off from Consul at once 2 s before that slot (connections reset, new ones refused): dead nodes whose
/// registrations stay listed (and ranked) until their sessions expire, at least 10 s after their last renewal. Each
/// task's slot is then classified by how many of its first ranks were dead, and the witness says whether, when and
/// where it ran.
/// </summary>
/// <remarks>
/// The one case the protocol documents as not covered — the K contenders and the K−1 watchers of a slot all dead
/// while their registrations still carry fresh stamps — is kept out of the chosen set (no slot of the window has its
/// first 2K−1 ranks all cut), and said so in the notes.
/// </remarks>
internal sealed class BackstopScenario(BenchSettings settings) : IScenario
{
    // Every 10 s: the backstops look within 600 ms of the slot, long before its deadline even with 300 executors
    // sharing this machine's two cores (a real fleet has a machine each), and no run of the slot before is going on at
    // the cut (a dead holder's lock would rightly keep the slot from running: Forbid).
    private const int Tasks = 20;
    private const int PeriodSeconds = 10;
    private const int Contenders = 3; // the executor's default --contenders

    // Each connection is three descriptors here (the executor's, and the forwarder's two), and this machine allows
    // 20,000 per process: 300 executors keep to 8 requests in flight (the default is 32; 10 tasks need fewer).
    private const int MaxConsulRequests = 8;

    /// <inheritdoc />
    public string Name => "backstop";

    /// <inheritdoc />
    public async Task<ScenarioResult> RunAsync(CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        int[] sizes = Environment.GetEnvironmentVariable("BENCH_BACKSTOP_SIZES") is { Length: > 0 } listed
            ? [.. listed.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(n => int.Parse(n, CultureInfo.InvariantCulture))]
            : settings.Quick ? [30] : [30, 300];
        // The ranking's CPU first, on the quiet machine.
        var figures = new List<Figure>(RankingCost.Measure(settings.Quick ? [30, 300] : [3, 30, 300, 3000]));
        var runs = new List<BackstopRun>();
        foreach (var n in sizes)
        {
            runs.Add(await RunOneAsync(n, cancellationToken));
        }

        var notes = new List<string>();
        foreach (var run in runs)
        {
            var setup = string.Create(CultureInfo.InvariantCulture, $"{run.Nodes} executors (in-process), {run.Dead} cut off 2 s before a slot of {Tasks} tasks every {PeriodSeconds}s");
            Figure Count(string metric, double value, string unit) => Figure.From(Name, metric, "dtask", setup, unit, null, value);
            figures.Add(Count("first 3 ranked dead (K = 3): slots", run.FirstKDead.Count, "slots"));
            figures.Add(Count("first 3 ranked dead (K = 3): slots run", run.FirstKDead.Count(s => s.RanBy is not null), "slots"));
            figures.Add(Count("first 2 ranked dead, third alive: slots", run.FirstTwoDead.Count, "slots"));
            figures.Add(Count("first 2 ranked dead, third alive: slots run", run.FirstTwoDead.Count(s => s.RanBy is not null), "slots"));
            figures.Add(Count("first ranked dead, second alive: slots", run.FirstDead.Count, "slots"));
            figures.Add(Count("first ranked dead, second alive: slots run", run.FirstDead.Count(s => s.RanBy is not null), "slots"));
            figures.Add(Count("first ranked alive: slots", run.FirstAlive.Count, "slots"));
            figures.Add(Count("first ranked alive: slots run", run.FirstAlive.Count(s => s.RanBy is not null), "slots"));
            figures.Add(Count("duplicate runs (same slot run again)", run.Duplicates, "runs"));
            figures.Add(Count("Consul HTTP requests per fire, fire path only (by URL): the slot before, every node alive", Math.Round(run.RequestsPerFireAlive, 2), "requests"));
            figures.Add(Count("Consul HTTP requests per fire, fire path only (by URL): the slot of the cut", Math.Round(run.RequestsPerFireCut, 2), "requests"));
            figures.Add(Figure.From(Name, "first ranked alive: fire latency (witness)", "dtask", setup, "ms", Latencies(run.FirstAlive)));
            figures.Add(Figure.From(Name, "first ranked dead, second alive: fire latency (witness)", "dtask", setup, "ms", Latencies(run.FirstDead)));
            figures.Add(Figure.From(Name, "first 2 ranked dead, third alive: fire latency (witness)", "dtask", setup, "ms", Latencies(run.FirstTwoDead)));
            figures.Add(Figure.From(Name, "first 3 ranked dead (K = 3): fire latency (witness)", "dtask", setup, "ms", Latencies(run.FirstKDead)));
            figures.Add(Figure.From(Name, "first 3 ranked dead (K = 3): rank of the node that ran it (1 = first)", "dtask", setup, "rank",
                Distribution.Of(run.FirstKDead.Where(s => s.RanBy is not null).Select(s => (double)s.RankThatRan))));
            notes.Add(string.Create(CultureInfo.InvariantCulture,
                $"backstop {run.Nodes}: {run.Dead} of {run.Nodes} executors cut off from Consul at {run.CutAt:HH:mm:ss.fff} UTC; {run.Slots} slots due 2 s after the cut (one of each task); "
                + $"{run.FirstKDead.Count} had their first {Contenders} ranks dead, {run.FirstTwoDead.Count} their first two only, {run.FirstDead.Count} their first only, {run.FirstAlive.Count} a live first rank; "
                + $"no slot had its first {(2 * Contenders) - 1} ranks (contenders and watchers) all cut (kept out of the chosen set: the documented limit); "
                + $"rank step {run.StepMs:0} ms (min(--rank-delay, window / 4K)); cut registrations still listed 5 s after the slot: {run.DeadStillListed} of {run.Dead}; "
                + $"fire-path requests per fire by part, the slot before: {run.AliveProfile}; the slot of the cut: {run.CutProfile}."));
            foreach (var slot in run.FirstKDead.Where(s => s.RanBy is null))
            {
                notes.Add($"backstop {run.Nodes}: slot {slot.Slot} of {slot.Task} (first {Contenders} dead) did not run: {slot.Record ?? "no record"}");
            }

            if (run.Problems.Count > 0)
            {
                notes.Add($"backstop {run.Nodes}: live executors logged {run.Problems.Count} warnings/errors, first: {run.Problems[0]}");
            }
        }

        var goals = new List<GoalCheck>();
        var kDead = runs.Sum(r => r.FirstKDead.Count);
        var kRan = runs.Sum(r => r.FirstKDead.Count(s => s.RanBy is not null));
        var measured = string.Join("; ", runs.Select(r => string.Create(CultureInfo.InvariantCulture,
            $"{r.Nodes} executors: {r.FirstKDead.Count(s => s.RanBy is not null)} of {r.FirstKDead.Count} run, witness p99 {Latencies(r.FirstKDead)?.P99 ?? double.NaN:0} ms")));
        goals.Add(new GoalCheck("a slot whose first K nodes are dead still fires (30 and 300 executors)", measured, kDead > 0 && kRan == kDead,
            kDead == 0 ? "no slot had its first K ranks dead" : kRan == kDead ? null : $"{kDead - kRan} of {kDead} did not run"));
        var worstRequests = runs.Max(r => r.RequestsPerFireAlive);
        goals.Add(new GoalCheck("at most 8 Consul HTTP requests per fire at 30 and 300 executors (fire path, by URL; 20 tasks every 10 s, every node alive)",
            string.Join("; ", runs.Select(r => string.Create(CultureInfo.InvariantCulture, $"{r.Nodes} executors: {r.RequestsPerFireAlive:0.0} (the slot of the cut: {r.RequestsPerFireCut:0.0})"))),
            worstRequests <= 8, worstRequests <= 8 ? null : string.Create(CultureInfo.InvariantCulture, $"worst {worstRequests:0.0} requests per fire")));
        var delays = runs.Select(r => (r, Delta: (Latencies(r.FirstDead)?.Median ?? double.NaN) - (Latencies(r.FirstAlive)?.Median ?? double.NaN))).ToList();
        goals.Add(new GoalCheck("a dead first-ranked node delays a slot by at most one rank step",
            string.Join("; ", delays.Select(d => string.Create(CultureInfo.InvariantCulture,
                $"{d.r.Nodes} executors: median {Latencies(d.r.FirstDead)?.Median ?? double.NaN:0} ms vs {Latencies(d.r.FirstAlive)?.Median ?? double.NaN:0} ms with the first alive (+{d.Delta:0} ms; step {d.r.StepMs:0} ms)"))),
            delays.All(d => d.Delta <= d.r.StepMs + 20),
            delays.All(d => d.Delta <= d.r.StepMs + 20) ? null : "the second rank looked later than one step after the slot"));
        return new ScenarioResult(Name, clock.Elapsed.TotalSeconds, figures, goals, notes, []);
    }

    private static Distribution? Latencies(IEnumerable<BackstopSlot> slots) => Distribution.Of(slots.Where(s => s.LatencyMs is not null).Select(s => s.LatencyMs!.Value));

    private static async Task<BackstopRun> RunOneAsync(int n, CancellationToken cancellationToken)
    {
        Console.Error.WriteLine($"  dtask: {n} executors (in-process), up to half cut off, {Tasks} tasks every {PeriodSeconds}s");
        await using var consul = await ConsulUnderTest.StartAsync(cancellationToken, tally: true);
        using var witness = new Witness();
        using var loader = new TaskLoader(consul.Client, ConsulUnderTest.Layout);
        var tasks = BenchTask.Many(Tasks, name => new BenchTask(name, null, $"{PeriodSeconds}s", witness.Command, History: 5));
        await loader.LoadAsync(tasks, cancellationToken);
        var nodes = Enumerable.Range(1, n).Select(i => string.Create(CultureInfo.InvariantCulture, $"node-{i:000}")).ToList();
        var forwarders = nodes.ToDictionary(node => node, _ => new CuttableForwarder(consul.Agent.Address), StringComparer.Ordinal);
        var log = new ExecutorLog();
        var executors = new List<IRunningExecutor>();
        try
        {
            foreach (var group in nodes.Chunk(16))
            {
                var starting = group.Select(node => InProcessExecutor.StartAsync(node, ConsulUnderTest.Prefix, new ConsulClientOptions { Address = forwarders[node].Address }, log,
                    cancellationToken, MaxConsulRequests)).ToList();
                try
                {
                    await Task.WhenAll(starting);
                }
                finally
                {
                    executors.AddRange(starting.Where(t => t.IsCompletedSuccessfully).Select(t => t.Result));
                }
            }

            // Every executor has timed its peers' clocks (a stamp interval) and the fleet is quiet before the cut.
            await Task.Delay(TimeSpan.FromSeconds(12), cancellationToken);
            // A slot with every node alive first (its fire-path requests counted by URL), then the slot after it with the cut.
            var slot = ((SlotClock.CurrentSecond + 4) / PeriodSeconds * PeriodSeconds) + (2 * PeriodSeconds);
            long FirePath() => consul.Agent.Requests!.Snapshot()[RequestKind.FirePath];
            await SlotClock.UntilAsync(slot - PeriodSeconds - 1, cancellationToken);
            var aliveBefore = FirePath();
            var aliveParts = consul.Agent.Requests!.FirePathParts();
            await SlotClock.UntilAsync(slot - PeriodSeconds + 3, cancellationToken);
            var aliveRequests = (double)(FirePath() - aliveBefore) / Tasks;
            var aliveProfile = RequestTally.Profile(aliveParts, consul.Agent.Requests!.FirePathParts(), Tasks);
            var pairs = tasks.Select(t => (t.Name, Slot: slot, Order: SlotRanking.ByHash(new TaskId(BenchTask.Namespace, t.Name), slot, nodes))).ToList();
            var dead = ChooseDead(pairs.Select(p => p.Order).ToList(), n / 2, pairs.Count / 2);

            await SlotClock.UntilAsync(slot - 2, cancellationToken);
            var cutAt = DateTimeOffset.UtcNow;
            log.Clear();
            foreach (var node in dead)
            {
                forwarders[node].Cut();
            }

            var cutBefore = FirePath();
            var cutParts = consul.Agent.Requests!.FirePathParts();
            await SlotClock.UntilAsync(slot + 3, cancellationToken);
            var cutRequests = (double)(FirePath() - cutBefore) / Tasks;
            var cutProfile = RequestTally.Profile(cutParts, consul.Agent.Requests!.FirePathParts(), Tasks);
            await SlotClock.UntilAsync(slot + 5, cancellationToken);
            var listed = (await consul.Client.Kv.ListAsync(ConsulUnderTest.Layout.NodesPrefix, cancellationToken: cancellationToken)).Value
                .Select(p => p.Key[ConsulUnderTest.Layout.NodesPrefix.Length..]).ToHashSet(StringComparer.Ordinal);
            var lines = witness.Read();
            var slots = new List<BackstopSlot>();
            foreach (var (task, _, order) in pairs)
            {
                var runs = lines.Where(l => l.Task == task && l.Slot == slot).OrderBy(l => l.StartedAt).ToList();
                var ran = runs.FirstOrDefault();
                string? record = null;
                if (ran is null)
                {
                    var pair = (await consul.Client.Kv.GetAsync(ConsulUnderTest.Layout.HistoryKey(BenchTask.Namespace, task, slot), cancellationToken: cancellationToken)).Value;
                    record = pair is null ? null : System.Text.Encoding.UTF8.GetString(pair.Value.Span);
                }

                var deadAtTop = order.TakeWhile(dead.Contains).Count();
                slots.Add(new BackstopSlot(task, slot, deadAtTop, ran?.Node, ran is null ? 0 : order.ToList().IndexOf(ran.Node) + 1, ran?.LatencyMs, runs.Count, record));
            }

            return new BackstopRun(n, dead.Count, cutAt, pairs.Count,
                [.. slots.Where(s => s.DeadAtTop >= Contenders)], [.. slots.Where(s => s.DeadAtTop == 2)], [.. slots.Where(s => s.DeadAtTop == 1)], [.. slots.Where(s => s.DeadAtTop == 0)],
                slots.Sum(s => Math.Max(0, s.Runs - 1)), Math.Min(150, PeriodSeconds * 1000.0 / (4 * Contenders)), dead.Count(listed.Contains), aliveRequests, cutRequests, aliveProfile, cutProfile,
                [.. log.Problems.Where(p => !dead.Contains(p.Split(':', 2)[0]))]);
        }
        finally
        {
            foreach (var forwarder in forwarders.Values)
            {
                forwarder.Cut(); // the executors stop at once, without Consul
            }

            await Task.WhenAll(executors.Select(e => e.DisposeAsync().AsTask()));
            await Task.WhenAll(forwarders.Values.Select(f => f.DisposeAsync().AsTask()));
        }
    }

    /// <summary>
    /// Up to <paramref name="budget"/> nodes to cut: the first K of up to <paramref name="slots"/> slots, as many as fit,
    /// never the first 2K−1 of any slot.
    /// </summary>
    private static HashSet<string> ChooseDead(IReadOnlyList<IReadOnlyList<string>> orders, int budget, int slots)
    {
        var dead = new HashSet<string>(StringComparer.Ordinal);
        var random = new Random(20261206);
        var covered = 0;
        foreach (var order in orders.OrderBy(_ => random.Next()))
        {
            if (covered == slots)
            {
                break;
            }

            var candidate = new HashSet<string>(dead, StringComparer.Ordinal);
            candidate.UnionWith(order.Take(Contenders));
            if (candidate.Count <= budget && orders.All(o => o.Take((2 * Contenders) - 1).Any(node => !candidate.Contains(node))))
            {
                dead = candidate;
                covered++;
            }
        }

        return dead;
    }

    private sealed record BackstopSlot(string Task, long Slot, int DeadAtTop, string? RanBy, int RankThatRan, double? LatencyMs, int Runs, string? Record);

    private sealed record BackstopRun(int Nodes, int Dead, DateTimeOffset CutAt, int Slots, IReadOnlyList<BackstopSlot> FirstKDead, IReadOnlyList<BackstopSlot> FirstTwoDead,
        IReadOnlyList<BackstopSlot> FirstDead,
        IReadOnlyList<BackstopSlot> FirstAlive, int Duplicates, double StepMs, int DeadStillListed, double RequestsPerFireAlive,
        double RequestsPerFireCut, string AliveProfile, string CutProfile, IReadOnlyList<string> Problems);
}
