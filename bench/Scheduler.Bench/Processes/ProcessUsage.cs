using System.Globalization;
using System.Runtime.InteropServices;

namespace Dtask.Bench.Processes;

/// <summary>CPU time and memory of one process at one moment, from <c>/proc/&lt;pid&gt;/stat</c> and <c>status</c>.</summary>
/// <param name="At">When it was read (monotonic seconds).</param>
/// <param name="CpuSeconds">User + system time of the process itself.</param>
/// <param name="ChildCpuSeconds">User + system time of its children that it waited for (the commands it ran).</param>
/// <param name="RssBytes">Resident set size now (<c>VmRSS</c>).</param>
/// <param name="PeakRssBytes">Largest resident set size so far (<c>VmHWM</c>).</param>
internal sealed record ProcessUsage(double At, double CpuSeconds, double ChildCpuSeconds, long RssBytes, long PeakRssBytes)
{
    /// <summary>Reads the usage of <paramref name="pid"/>; null when the process is gone.</summary>
    public static ProcessUsage? Read(int pid, double at)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat");
            // The command name (field 2) may hold spaces; the fields after its closing parenthesis are plain numbers.
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            var ticks = ClockTicks.PerSecond;
            double Field(int number) => double.Parse(fields[number - 3], CultureInfo.InvariantCulture) / ticks;
            var status = File.ReadAllLines($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/status");
            long Kb(string key) => status.Where(l => l.StartsWith(key, StringComparison.Ordinal))
                .Select(l => long.Parse(l[key.Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024).FirstOrDefault();
            return new ProcessUsage(at, Field(14) + Field(15), Field(16) + Field(17), Kb("VmRSS:"), Kb("VmHWM:"));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return null;
        }
    }

    /// <summary>CPU used between <paramref name="earlier"/> and this reading, as a share of one core (1.0 = one core busy).</summary>
    public double CoresSince(ProcessUsage earlier)
    {
        ArgumentNullException.ThrowIfNull(earlier);
        var wall = At - earlier.At;
        return wall <= 0 ? 0 : (CpuSeconds - earlier.CpuSeconds) / wall;
    }
}

/// <summary>The kernel's clock ticks per second (<c>sysconf(_SC_CLK_TCK)</c>), the unit of <c>/proc</c> CPU times.</summary>
internal static partial class ClockTicks
{
    private const int ScClkTck = 2;

    /// <summary>Ticks per second.</summary>
    public static double PerSecond { get; } = Read();

    private static double Read()
    {
        var value = SysConf(ScClkTck);
        return value > 0 ? value : 100;
    }

    [LibraryImport("libc", EntryPoint = "sysconf")]
    private static partial long SysConf(int name);
}
