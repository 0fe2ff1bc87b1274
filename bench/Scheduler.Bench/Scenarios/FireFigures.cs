using Dtask.Bench.Report;

namespace Dtask.Bench.Scenarios;

/// <summary>The figures of a <see cref="FireMeasurement"/>, named the same way in every scenario.</summary>
internal static class FireFigures
{
    /// <summary>Metric names.</summary>
    public const string Latency = "fire latency: slot → child start (witness)";

    /// <summary>The executor's own figure.</summary>
    public const string ExecutorDelay = "fire delay logged by the executor";

    /// <summary>Raft applies per fire.</summary>
    public const string Writes = "Consul writes per fire (Raft applies)";

    /// <summary>HTTP requests per fire.</summary>
    public const string Requests = "Consul HTTP requests per fire";

    /// <summary>Duplicates.</summary>
    public const string Duplicates = "duplicate runs (same slot run again)";

    /// <summary>Metric: the fire path's requests per fire, by URL (in-process executors).</summary>
    public const string FirePathRequests = "Consul HTTP requests per fire, fire path only (state/ reads and transactions, by URL)";

    /// <summary>Metric: the fire path's writes per fire, by URL (in-process executors).</summary>
    public const string FirePathWrites = "Consul writes per fire, fire path only (write transactions and state/ writes, by URL)";

    /// <summary>Missed.</summary>
    public const string Missed = "missed slots (never ran)";

    /// <summary>Figures of one measurement.</summary>
    public static IReadOnlyList<Figure> Of(string scenario, FireMeasurement m)
    {
        ArgumentNullException.ThrowIfNull(m);
        var system = m.Setup.SystemName;
        var setup = m.Setup.Describe();
        var figures = new List<Figure>
        {
            Figure.From(scenario, Latency, system, setup, "ms", Distribution.Of(m.Tally.LatenciesMs)),
        };
        if (m.ExecutorDelaysMs.Count > 0)
        {
            figures.Add(Figure.From(scenario, ExecutorDelay, system, setup, "ms", Distribution.Of(m.ExecutorDelaysMs)));
        }

        figures.Add(Figure.From(scenario, Writes, system, setup, "writes", m.WritesPerFire, Round(m.WritesPerFireOverall)));
        figures.Add(Figure.From(scenario, Requests, system, setup, "requests", m.RequestsPerFire, Round(m.RequestsPerFireOverall)));
        if (!double.IsNaN(m.FirePathRequestsPerFire))
        {
            figures.Add(new Figure(scenario, FirePathRequests, system, setup, "requests", Value: Round(m.FirePathRequestsPerFire)));
            figures.Add(new Figure(scenario, FirePathWrites, system, setup, "writes", Value: Round(m.FirePathWritesPerFire)));
            figures.Add(new Figure(scenario, "standing HTTP requests per executor per second (sessions, nodes/ watch and stamps, other watches)", system, setup,
                "requests/s", Value: Round(m.StandingPerExecutorSecond.Values.Sum())));
        }

        figures.Add(new Figure(scenario, Duplicates, system, setup, "runs", Value: m.Tally.Duplicates, Samples: m.Tally.Expected));
        figures.Add(new Figure(scenario, Missed, system, setup, "slots", Value: m.Tally.Missed, Samples: m.Tally.Expected));
        if (!double.IsNaN(m.ExecutorCores))
        {
            figures.Add(new Figure(scenario, "executor CPU (all executors)", system, setup, "cores", Value: Round(m.ExecutorCores)));
        }

        figures.Add(new Figure(scenario, "Consul agent CPU", system, setup, "cores", Value: Round(m.ConsulCores)));
        return figures;
    }

    /// <summary>Notes: background cost and problems logged.</summary>
    public static IEnumerable<string> Notes(FireMeasurement m)
    {
        ArgumentNullException.ThrowIfNull(m);
        var setup = $"{m.Setup.SystemName}, {m.Setup.Describe()}";
        if (m.Idle.Seconds > 0)
        {
            var perExecutor = m.Idle.RenewalsPerSecond / m.Setup.Nodes;
            yield return $"{setup}: idle background (tasks suspended, {m.Idle.Seconds:0} s) = {m.Idle.RaftPerSecond:0.00} Raft applies/s and {m.Idle.HttpPerSecond:0.0} HTTP requests/s for the fleet; session renewals {perExecutor * 5:0.00} per executor per 5 s (TTL/3 with the default 15 s TTL); subtracted from the per-fire figures.";
        }

        yield return $"{setup}: {m.Tally.Runs} runs for {m.Tally.Expected} due slots; window totals {m.Window.RaftApplies:0} Raft applies ({m.Window.TxnApplies:0} txn, {m.Window.KvApplies:0} kv, {m.Window.SessionApplies:0} session), {m.Window.HttpRequests:0} HTTP requests ({m.Window.ConsistentReads:0} consistent reads); busiest endpoints: {string.Join(", ", m.Window.ByEndpoint.OrderByDescending(p => p.Value).Take(4).Select(p => $"{p.Key} {p.Value:0}"))}.";
        if (m.StandingPerExecutorSecond.Count > 0)
        {
            yield return string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"{setup}: by URL in the agent's request log over the window: {m.FirePathRequestsPerFire:0.00} fire-path requests per fire ({m.FirePathWritesPerFire:0.00} of them writes; by part: {m.FirePathProfile}); standing requests per executor per second: {string.Join(", ", m.StandingPerExecutorSecond.Select(p => $"{p.Key} {p.Value:0.00}"))}.");
        }

        if (m.Warnings > 0)
        {
            yield return $"{setup}: executors logged {m.Warnings} warnings/errors, first: {string.Join(" | ", m.Problems.Take(3))}";
        }
    }

    /// <summary>Three significant decimals.</summary>
    public static double Round(double value) => double.IsNaN(value) ? value : Math.Round(value, 3);
}
