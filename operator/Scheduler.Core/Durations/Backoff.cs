namespace Dtask.Core.Durations;

/// <summary>
/// Capped exponential backoff: the n-th failure in a row waits <c>min(min · 2ⁿ⁻¹, max)</c>. With a
/// <see cref="Random"/>, each wait is drawn between half and all of that, so processes that failed together do not
/// retry together. It only computes durations: the caller waits them on its own clock.
/// </summary>
public sealed class Backoff
{
    private readonly TimeSpan min;
    private readonly TimeSpan max;
    private readonly Random? jitter;
    private TimeSpan current;

    /// <summary>Creates a backoff from <paramref name="min"/> doubling up to <paramref name="max"/>.</summary>
    /// <param name="min">The first wait.</param>
    /// <param name="max">The longest wait (<see cref="TimeSpan.MaxValue"/> for no cap).</param>
    /// <param name="jitter">Draws each wait between half and all of it; without one the waits are exact.</param>
    public Backoff(TimeSpan min, TimeSpan max, Random? jitter = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(min, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThan(max, min);
        this.min = min;
        this.max = max;
        this.jitter = jitter;
        current = min;
    }

    /// <summary>The wait the next <see cref="Next"/> is based on (before jitter).</summary>
    public TimeSpan Current => current;

    /// <summary>Counts a failure: returns how long to wait before the next try, and doubles the wait after it.</summary>
    public TimeSpan Next()
    {
        var wait = current;
        current = current.Ticks > max.Ticks / 2 ? max : current * 2;
        return jitter is null ? wait : TimeSpan.FromTicks((long)(wait.Ticks * (0.5 + (jitter.NextDouble() / 2))));
    }

    /// <summary>Forgets the failures: the next wait is the minimum again.</summary>
    public void Reset() => current = min;
}
