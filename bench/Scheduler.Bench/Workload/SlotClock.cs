namespace Dtask.Bench.Workload;

/// <summary>Waits for instants of the wall clock (slot boundaries), as cron or a systemd timer would.</summary>
internal static class SlotClock
{
    /// <summary>Now, in Unix seconds with a fraction.</summary>
    public static double Now => (DateTimeOffset.UtcNow - DateTimeOffset.UnixEpoch).TotalSeconds;

    /// <summary>The current Unix second.</summary>
    public static long CurrentSecond => DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    /// <summary>Returns at <paramref name="unixSeconds"/> (at once when it has passed).</summary>
    public static async Task UntilAsync(double unixSeconds, CancellationToken cancellationToken)
    {
        var wait = TimeSpan.FromSeconds(unixSeconds - Now);
        if (wait > TimeSpan.Zero)
        {
            await Task.Delay(wait, cancellationToken);
        }
    }
}
