namespace Dtask.Operator.Sources.Kubernetes;

/// <summary>
/// Capped exponential backoff with jitter: the n-th failure in a row waits a random time between half and all of
/// <c>min(initial · 2ⁿ⁻¹, max)</c>, so replicas and watches that failed together do not retry together.
/// </summary>
public sealed class Backoff
{
    private readonly TimeSpan initial;
    private readonly TimeSpan max;
    private readonly Random random;
    private int failures;

    /// <summary>Creates a backoff between <paramref name="initial"/> and <paramref name="max"/>.</summary>
    public Backoff(TimeSpan initial, TimeSpan max, Random? random = null)
    {
        this.initial = initial;
        this.max = max;
        this.random = random ?? new Random();
    }

    /// <summary>How many failures in a row have been counted.</summary>
    public int Failures => failures;

    /// <summary>Counts a failure and returns how long to wait before the next try.</summary>
    public TimeSpan Next()
    {
        failures = Math.Min(failures + 1, 30);
        var ceiling = Math.Min(max.Ticks, initial.Ticks * Math.Pow(2, failures - 1));
        return TimeSpan.FromTicks((long)(ceiling * (0.5 + (random.NextDouble() / 2))));
    }

    /// <summary>Forgets the failures: the next one waits <c>initial</c> again.</summary>
    public void Reset() => failures = 0;
}
