namespace Dtask.Chaos.Faults;

/// <summary>
/// The schedule of faults of a chaos run, one after the other (a fault may begin late while it waits for a fresh run
/// to hit; a fault that could not end before <see cref="QuietTail"/> is dropped). Every fault ends (victim restarted or
/// resumed) at least <see cref="QuietTail"/> before the end of the fault phase, so the last slots are judged on a
/// healthy cluster.
/// </summary>
/// <param name="Faults">The faults, by start time.</param>
public sealed record FaultPlan(IReadOnlyList<PlannedFault> Faults)
{
    /// <summary>The fault-free time at the end of the phase.</summary>
    public static readonly TimeSpan QuietTail = TimeSpan.FromSeconds(10);

    /// <summary>How young the <c>long</c> task's run must be when its holder is hit: its 45 s child then outlives the takeover (about two TTLs).</summary>
    public static readonly TimeSpan FreshRun = TimeSpan.FromSeconds(15);

    /// <summary>A pause long enough for the paused executor's session to expire: Consul invalidates a TTL session within two TTLs.</summary>
    public static TimeSpan PauseHold(TimeSpan sessionTtl) => (sessionTtl * 2) + TimeSpan.FromSeconds(5);

    /// <summary>
    /// The full plan for a phase of <paramref name="duration"/> (at least 120 s): two executor kills, a pause past the
    /// TTL, two leader kills and a follower restart, spread over the phase.
    /// </summary>
    public static FaultPlan Full(TimeSpan duration, TimeSpan sessionTtl)
    {
        if (duration < TimeSpan.FromSeconds(120))
        {
            throw new ArgumentOutOfRangeException(nameof(duration), duration, "the full fault plan needs at least 120 s; use the short plan");
        }

        var usable = duration - QuietTail;
        TimeSpan At(double fraction) => TimeSpan.FromSeconds(Math.Round(usable.TotalSeconds * fraction));
        return new FaultPlan(
        [
            new(At(0.07), FaultKind.ExecutorKill, TimeSpan.FromSeconds(15), "long", FreshRun),
            new(At(0.22), FaultKind.ExecutorPause, PauseHold(sessionTtl), "long", FreshRun),
            new(At(0.45), FaultKind.LeaderKill, TimeSpan.FromSeconds(12)),
            new(At(0.58), FaultKind.FollowerRestart, TimeSpan.FromSeconds(3)),
            new(At(0.68), FaultKind.ExecutorKill, TimeSpan.FromSeconds(12), "overlap-2s"),
            new(At(0.85), FaultKind.LeaderKill, TimeSpan.FromSeconds(10)),
        ]).Validated(duration);
    }

    /// <summary>The short plan (about 60 s, part of <c>make test</c>): one executor kill and restart, one leader kill and restart.</summary>
    public static FaultPlan Brief(TimeSpan duration)
    {
        var plan = new FaultPlan(
        [
            new(TimeSpan.FromSeconds(8), FaultKind.ExecutorKill, TimeSpan.FromSeconds(12), "long", FreshRun),
            new(TimeSpan.FromSeconds(28), FaultKind.LeaderKill, TimeSpan.FromSeconds(10)),
        ]);
        return plan.Validated(duration);
    }

    /// <summary>The plan for <paramref name="duration"/>: <see cref="Full"/> from 120 s, else <see cref="Brief"/>.</summary>
    public static FaultPlan For(TimeSpan duration, TimeSpan sessionTtl) =>
        duration >= TimeSpan.FromSeconds(120) ? Full(duration, sessionTtl) : Brief(duration);

    private FaultPlan Validated(TimeSpan duration)
    {
        foreach (var fault in Faults)
        {
            if (fault.Until > duration - QuietTail)
            {
                throw new ArgumentOutOfRangeException(nameof(duration), duration,
                    $"{fault.Kind} at {fault.At.TotalSeconds} s holds until {fault.Until.TotalSeconds} s, past the quiet tail of a {duration.TotalSeconds} s run");
            }
        }

        return this;
    }
}
