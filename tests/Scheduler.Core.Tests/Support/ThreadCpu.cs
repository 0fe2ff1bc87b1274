using System.Globalization;

namespace Dtask.Core.Tests.Support;

/// <summary>
/// The processor time the calling thread has used (Linux: <c>/proc/thread-self/stat</c>, 10 ms resolution), for time
/// bounds that must not fail because other processes share the machine; elsewhere, the wall clock.
/// </summary>
internal static class ThreadCpu
{
    private static readonly System.Diagnostics.Stopwatch Wall = System.Diagnostics.Stopwatch.StartNew();

    public static TimeSpan Now()
    {
        try
        {
            var stat = File.ReadAllText("/proc/thread-self/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            // After the command: state is field 3; utime and stime are fields 14 and 15 (indexes 11 and 12 here).
            var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
            return TimeSpan.FromSeconds(ticks / 100.0);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException or ArgumentOutOfRangeException)
        {
            return Wall.Elapsed;
        }
    }
}
