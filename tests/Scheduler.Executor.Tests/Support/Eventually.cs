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

    /// <summary>Polls an asynchronous condition (every 200 ms) until it holds; false when it never did within the time.</summary>
    public static async Task<bool> TrueAsync(Func<Task<bool>> condition, TimeSpan within)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            if (clock.Elapsed > within)
            {
                return false;
            }

            await Task.Delay(200, TestContext.Current.CancellationToken);
        }

        return true;
    }

    /// <summary>Polls <paramref name="probe"/> until it returns <paramref name="expected"/>; the last value seen otherwise.</summary>
    public static async Task<T> EqualsAsync<T>(Func<Task<T>> probe, T expected, TimeSpan within)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var value = await probe();
            if (EqualityComparer<T>.Default.Equals(value, expected) || clock.Elapsed > within)
            {
                return value;
            }

            await Task.Delay(50, TestContext.Current.CancellationToken);
        }
    }
}
