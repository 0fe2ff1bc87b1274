using System.Diagnostics;
using Dtask.Bench.Processes;
using Dtask.Bench.Workload;

namespace Dtask.Bench.Consul;

/// <summary>One sample: the agent's counters and the processes' usage at <paramref name="Second"/> + 0.5 s.</summary>
/// <param name="Second">The Unix second the sample closes (taken half a second after it began).</param>
/// <param name="Counters">The agent's counters.</param>
/// <param name="Usage">Usage of each watched process, by pid.</param>
internal sealed record WindowSample(long Second, ConsulCounters Counters, IReadOnlyDictionary<int, ProcessUsage> Usage);

/// <summary>
/// Samples the agent's counters and processes' CPU and memory once a second, at the middle of each second (fires of
/// one-second tasks happen near the start of a second, so a fire and its writes fall in the same interval).
/// </summary>
internal static class WindowSampler
{
    /// <summary>Samples from <paramref name="firstSecond"/> - 1 to <paramref name="lastSecond"/>, every <paramref name="step"/> seconds.</summary>
    public static async Task<IReadOnlyList<WindowSample>> RunAsync(AgentMetrics metrics, IReadOnlyCollection<int> pids, long firstSecond, long lastSecond,
        CancellationToken cancellationToken, int step = 1)
    {
        ArgumentNullException.ThrowIfNull(metrics);
        var samples = new List<WindowSample>();
        for (var second = firstSecond - 1; second <= lastSecond; second += step)
        {
            await SlotClock.UntilAsync(second + 0.5, cancellationToken);
            var at = Stopwatch.GetTimestamp() / (double)Stopwatch.Frequency;
            var counters = await metrics.ReadAsync(cancellationToken);
            var usage = new Dictionary<int, ProcessUsage>();
            foreach (var pid in pids)
            {
                if (ProcessUsage.Read(pid, at) is { } u)
                {
                    usage[pid] = u;
                }
            }

            samples.Add(new WindowSample(second, counters, usage));
        }

        return samples;
    }

    /// <summary>Per-interval differences: (second, counters during it, cores used by each pid during it).</summary>
    public static IReadOnlyList<(long Second, ConsulCounters Delta, IReadOnlyDictionary<int, double> Cores)> Intervals(IReadOnlyList<WindowSample> samples)
    {
        ArgumentNullException.ThrowIfNull(samples);
        var intervals = new List<(long, ConsulCounters, IReadOnlyDictionary<int, double>)>();
        for (var i = 1; i < samples.Count; i++)
        {
            var cores = samples[i].Usage
                .Where(u => samples[i - 1].Usage.ContainsKey(u.Key))
                .ToDictionary(u => u.Key, u => u.Value.CoresSince(samples[i - 1].Usage[u.Key]));
            intervals.Add((samples[i].Second, samples[i].Counters.Since(samples[i - 1].Counters), cores));
        }

        return intervals;
    }
}
