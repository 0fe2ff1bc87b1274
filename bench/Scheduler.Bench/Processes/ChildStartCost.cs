using System.Diagnostics;
using System.Globalization;
using Dtask.Executor.Processes;

namespace Dtask.Bench.Processes;

/// <summary>
/// The machine's own price of one child start, measured the way the executor starts a child
/// (<see cref="ChildProcessGroup.StartAsync"/> of <c>/bin/true</c>), serially on an otherwise quiet machine: the CPU the
/// children used (their user and system time, counted to this process once they are reaped) and the wall time of each
/// start until its exit.
/// Process start on these machines varies several-fold from day to day, and every fire is a child start, so a scale
/// figure is read against this one.
/// </summary>
/// <param name="Starts">How many children were started.</param>
/// <param name="CpuMsPerStart">CPU used by each child (the command, and setsid where the executor uses it), in milliseconds.</param>
/// <param name="WallMsMedian">Start → exit seen, median, in milliseconds.</param>
internal sealed record ChildStartCost(int Starts, double CpuMsPerStart, double WallMsMedian)
{
    /// <summary>How the executor starts children in this process.</summary>
    public static string Method => ChildProcessGroup.AutoMethod == ChildStartMethod.PosixSpawn ? "posix_spawn" : "setsid";

    /// <summary>The most child starts a second the machine's cores could run, with nothing else to do.</summary>
    public double CeilingPerSecond => CpuMsPerStart <= 0 ? double.PositiveInfinity : Environment.ProcessorCount * 1000 / CpuMsPerStart;

    /// <summary>The cores the children alone need at <paramref name="startsPerSecond"/>.</summary>
    public double CoresAt(double startsPerSecond) => startsPerSecond * CpuMsPerStart / 1000;

    /// <summary>One line for the notes.</summary>
    public string Describe() => string.Create(CultureInfo.InvariantCulture,
        $"{CpuMsPerStart:0.00} ms of CPU per child start (/bin/true started as the executor starts children, {Method}, {Starts} serial starts, start → exit median {WallMsMedian:0.00} ms): at most {CeilingPerSecond:0} starts a second on {Environment.ProcessorCount} cores with nothing else running");

    /// <summary>Starts <paramref name="starts"/> children one after the other and measures them.</summary>
    public static async Task<ChildStartCost> MeasureAsync(int starts, CancellationToken cancellationToken)
    {
        var self = Environment.ProcessId;
        var walls = new List<double>(starts);
        var before = ProcessUsage.Read(self, 0)?.ChildCpuSeconds ?? 0;
        for (var i = 0; i < starts; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var start = new ProcessStartInfo("/bin/true") { UseShellExecute = false };
            var began = Stopwatch.GetTimestamp();
            using var child = await ChildProcessGroup.StartAsync(start);
            await Task.WhenAll(child.StandardOutput.CopyToAsync(Stream.Null, cancellationToken), child.StandardError.CopyToAsync(Stream.Null, cancellationToken));
            await child.WaitForExitAsync(cancellationToken);
            walls.Add(Stopwatch.GetElapsedTime(began).TotalMilliseconds);
        }

        var after = ProcessUsage.Read(self, 0)?.ChildCpuSeconds ?? 0;
        walls.Sort();
        return new ChildStartCost(starts, Math.Round((after - before) * 1000 / starts, 2), Math.Round(walls[walls.Count / 2], 2));
    }
}
