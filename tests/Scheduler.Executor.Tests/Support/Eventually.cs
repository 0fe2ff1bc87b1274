using System.Diagnostics;

namespace Dtask.Executor.Tests.Support;

/// <summary>Polls a condition on the real clock, for things that happen in the background (a process dies, a watch fires).</summary>
public static class Eventually
{
    public static async Task<bool> TrueAsync(Func<bool> condition, TimeSpan within)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > within)
            {
                return false;
            }

            await Task.Delay(20, TestContext.Current.CancellationToken);
        }

        return true;
    }
}
