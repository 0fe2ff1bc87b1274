using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Dtask.Bench.Report;
using Dtask.Core.Model;
using Dtask.Executor.Daemon;

namespace Dtask.Bench.Scenarios;

/// <summary>
/// What ranking one slot costs an executor, by fleet size: every executor ranks every slot of the tasks it may run
/// among all the eligible nodes (<see cref="SlotRanking.ByHash"/>), so this CPU grows with tasks × nodes on each node.
/// Beside it, the same order computed with one SHA-256 per node (how ranks were weighted before), measured in the same run.
/// </summary>
internal static class RankingCost
{
    private const string Scenario = "backstop";

    /// <summary>The figures, one per fleet size and way, each the median of a few one-second rounds (µs per ranking).</summary>
    public static IReadOnlyList<Figure> Measure(IReadOnlyList<int> sizes)
    {
        var task = new TaskId("bench", "t-00005");
        var figures = new List<Figure>();
        foreach (var n in sizes)
        {
            var nodes = Enumerable.Range(1, n).Select(i => string.Create(CultureInfo.InvariantCulture, $"node-{i:00000}.fleet.internal")).ToList();
            var setup = string.Create(CultureInfo.InvariantCulture, $"one slot ranked among {n} nodes, one thread");
            figures.Add(Figure.From(Scenario, "CPU to rank one slot", "dtask", setup, "µs", Rounds(slot => SlotRanking.ByHash(task, slot, nodes))));
            figures.Add(Figure.From(Scenario, "CPU to rank one slot", "sha256-per-node", setup, "µs", Rounds(slot => ShaPerNode(task, slot, nodes))));
        }

        return figures;
    }

    private static Distribution? Rounds(Func<long, IReadOnlyList<string>> rank)
    {
        var perRanking = new List<double>();
        long slot = 1_900_000_000;
        for (var round = 0; round < 5; round++)
        {
            var clock = Stopwatch.StartNew();
            var count = 0;
            while (clock.ElapsedMilliseconds < 400)
            {
                _ = rank(slot++);
                count++;
            }

            perRanking.Add(clock.Elapsed.TotalMicroseconds / count);
        }

        return Distribution.Of(perRanking);
    }

    /// <summary>The rendezvous order with one SHA-256 of (task, slot, node) per node.</summary>
    private static IReadOnlyList<string> ShaPerNode(TaskId task, long slot, IEnumerable<string> nodes) =>
        [.. nodes.Distinct(StringComparer.Ordinal).OrderByDescending(n => Weight(task, slot, n)).ThenBy(n => n, StringComparer.Ordinal)];

    private static ulong Weight(TaskId task, long slot, string node)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture, $"{task}\n{slot}\n{node}")), hash);
        return BinaryPrimitives.ReadUInt64BigEndian(hash);
    }
}
