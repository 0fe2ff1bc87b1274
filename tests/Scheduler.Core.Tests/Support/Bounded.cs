namespace Dtask.Core.Tests.Support;

/// <summary>Runs a piece of work within a processor-time and an allocation bound, as the property tests require of every input.</summary>
internal static class Bounded
{
    /// <summary>The processor time one input may take.</summary>
    public static readonly TimeSpan PerInput = TimeSpan.FromSeconds(1);

    /// <summary>The bytes one input may allocate.</summary>
    public const long MaxAllocatedBytes = 200L * 1024 * 1024;

    /// <summary>
    /// Runs <paramref name="work"/>; throws <see cref="TimeoutException"/> or <see cref="InvalidOperationException"/> when a
    /// bound is passed. The time bound is checked on the fastest of three runs, so a machine busy with other work does
    /// not pass for slow code.
    /// </summary>
    public static void Run(Action work, string what)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                RunOnce(work, what);
                return;
            }
            catch (TimeoutException) when (attempt < 3)
            {
                // Once more.
            }
        }
    }

    private static void RunOnce(Action work, string what)
    {
        var allocated = GC.GetAllocatedBytesForCurrentThread();
        var started = ThreadCpu.Now();
        work();
        var spent = ThreadCpu.Now() - started;
        var bytes = GC.GetAllocatedBytesForCurrentThread() - allocated;
        if (spent > PerInput)
        {
            throw new TimeoutException($"{what} in {spent.TotalMilliseconds:F0} ms of processor time (over {PerInput.TotalMilliseconds} ms)");
        }

        if (bytes > MaxAllocatedBytes)
        {
            throw new InvalidOperationException($"allocated {bytes / (1024 * 1024)} MB (over {MaxAllocatedBytes / (1024 * 1024)} MB)");
        }
    }
}
