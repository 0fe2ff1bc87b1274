namespace Dtask.Chaos.Faults;

/// <summary>
/// The schedule of faults of a chaos run, in three lanes that run side by side (executor faults, Consul server faults,
/// clock jumps); the faults of a lane happen one after the other (a fault may begin late while it waits for a fresh run
/// to hit; one that could not end before <see cref="QuietTail"/> is dropped). Every fault ends at least
/// <see cref="QuietTail"/> before the end of the fault phase, so the last slots are judged on a healthy cluster. The plan
/// is a function of the seed: the same seed, the same plan.
/// </summary>
/// <param name="Faults">The faults, by start time.</param>
/// <param name="Seed">The seed it was drawn with.</param>
/// <param name="Clocks">The executors on a wrong clock from the start, and their offset.</param>
/// <param name="JumpNode">The executor whose clock jumps (under libfaketime from the start, at offset 0), or null.</param>
public sealed record FaultPlan(IReadOnlyList<PlannedFault> Faults, int Seed, IReadOnlyDictionary<string, TimeSpan> Clocks, string? JumpNode)
{
    /// <summary>The fault-free time at the end of the phase.</summary>
    public static readonly TimeSpan QuietTail = TimeSpan.FromSeconds(10);

    /// <summary>How young the <c>long</c> task's run must be when its holder is hit: its 45 s child then outlives the takeover (about two TTLs).</summary>
    public static readonly TimeSpan FreshRun = TimeSpan.FromSeconds(15);

    /// <summary>How far a drifting clock goes (then it comes back at the same rate): beyond the executors' 2 s skew limit.</summary>
    public static readonly TimeSpan DriftPeak = TimeSpan.FromSeconds(5);

    /// <summary>How long a drift lasts: out to <see cref="DriftPeak"/> in half of it (0.25 s a second), back in the other half.</summary>
    public static readonly TimeSpan DriftHold = TimeSpan.FromSeconds(40);

    /// <summary>The executors' HTTP request timeout (the Consul client's default): a hung agent is held past it.</summary>
    public static readonly TimeSpan HttpTimeout = TimeSpan.FromSeconds(10);

    /// <summary>How long a Consul server is cut off from the others: past two TTLs (the cut-off executors' sessions expire) and ten seconds more, so the majority is seen carrying the work.</summary>
    public static TimeSpan ServerPartitionHold(TimeSpan sessionTtl) => (sessionTtl * 2) + Checking.InvariantChecker.StallAllowance + TimeSpan.FromSeconds(10);

    /// <summary>A pause long enough for the paused executor's session to expire: Consul invalidates a TTL session within two TTLs.</summary>
    public static TimeSpan PauseHold(TimeSpan sessionTtl) => (sessionTtl * 2) + TimeSpan.FromSeconds(5);

    /// <summary>
    /// The full plan for a phase of <paramref name="duration"/> (at least 120 s): node-4 at −30 s and node-5 at +30 s
    /// from the start, node-3 jumping +1 h and −1 h and drifting to ±5 s and back; executor kills, pauses, pauses of the
    /// executor with its children, holder partitions past the TTL, isolations by drop rule, a flapping link, lost claim
    /// and finish answers; leader kills, a Consul server (the leader or a follower) partitioned from the other two, hung
    /// agents, agents restarted with their data, follower restarts. Each lane repeats its cycle until the phase is full
    /// (every kind at least twice from about eight minutes).
    /// </summary>
    /// <param name="duration">The fault phase.</param>
    /// <param name="sessionTtl">The executors' session TTL.</param>
    /// <param name="seed">The seed of the start times.</param>
    /// <param name="only">When given, the lanes keep only these kinds (a run aimed at some faults); the clock offsets stay.</param>
    public static FaultPlan Full(TimeSpan duration, TimeSpan sessionTtl, int seed, IReadOnlySet<FaultKind>? only = null)
    {
        if (duration < TimeSpan.FromSeconds(120))
        {
            throw new ArgumentOutOfRangeException(nameof(duration), duration, "the full fault plan needs at least 120 s; use the short plan");
        }

        var random = new Random(seed);
        var usable = duration - QuietTail;
        var faults = new List<PlannedFault>();
        var partition = PauseHold(sessionTtl);
        Lane(faults, random, usable, TimeSpan.FromSeconds(5),
        [
            at => new(at, FaultKind.ExecutorKill, TimeSpan.FromSeconds(12), "long", FreshRun),
            at => new(at, FaultKind.LostClaimAnswer, TimeSpan.FromSeconds(10)),
            at => new(at, FaultKind.TreePause, partition, "long"),
            at => new(at, FaultKind.HolderPartition, partition, "long"),
            at => new(at, FaultKind.LostFinishAnswer, TimeSpan.FromSeconds(10)),
            at => new(at, FaultKind.ExecutorIsolation, TimeSpan.FromSeconds(15)),
            at => new(at, FaultKind.ExecutorPause, partition, "long", FreshRun),
            at => new(at, FaultKind.LinkFlap, TimeSpan.FromSeconds(12)),
            at => new(at, FaultKind.ExecutorKill, TimeSpan.FromSeconds(12), "overlap-2s"),
        ], only);
        Lane(faults, random, usable, TimeSpan.FromSeconds(15),
        [
            at => new(at, FaultKind.LeaderKill, TimeSpan.FromSeconds(10)),
            at => new(at, FaultKind.ConsulPartition, ServerPartitionHold(sessionTtl)),
            at => new(at, FaultKind.AgentHang, HttpTimeout + TimeSpan.FromSeconds(4)),
            at => new(at, FaultKind.AgentRestart, TimeSpan.FromSeconds(5)),
            at => new(at, FaultKind.FollowerRestart, TimeSpan.FromSeconds(3)),
        ], only);
        Lane(faults, random, usable, TimeSpan.FromSeconds(25),
        [
            at => new(at, FaultKind.ClockJump, TimeSpan.FromSeconds(15), Offset: TimeSpan.FromHours(1)),
            at => new(at, FaultKind.ClockDrift, DriftHold, Offset: DriftPeak),
            at => new(at, FaultKind.ClockJump, TimeSpan.FromSeconds(15), Offset: -TimeSpan.FromHours(1)),
            at => new(at, FaultKind.ClockDrift, DriftHold, Offset: -DriftPeak),
        ], only);
        var clocks = new Dictionary<string, TimeSpan>(StringComparer.Ordinal) { ["node-4"] = TimeSpan.FromSeconds(-30), ["node-5"] = TimeSpan.FromSeconds(30) };
        return new FaultPlan([.. faults.OrderBy(f => f.At)], seed, clocks, "node-3").Validated(duration);
    }

    /// <summary>
    /// The short plan (50 s, part of <c>make test</c>): node-5 at +30 s from the start; the holder of the long task cut off
    /// past the TTL (no Consul fault meanwhile: a leader election restarts every session's TTL), one lost claim answer,
    /// one executor kill; one leader kill.
    /// </summary>
    public static FaultPlan Brief(TimeSpan duration, TimeSpan sessionTtl, int seed)
    {
        var plan = new FaultPlan(
        [
            new(TimeSpan.FromSeconds(3), FaultKind.HolderPartition, PauseHold(sessionTtl), "long"),
            new(TimeSpan.FromSeconds(28), FaultKind.LostClaimAnswer, TimeSpan.FromSeconds(6)),
            new(TimeSpan.FromSeconds(33), FaultKind.ExecutorKill, TimeSpan.FromSeconds(5), "long"),
            new(TimeSpan.FromSeconds(34), FaultKind.LeaderKill, TimeSpan.FromSeconds(5)),
        ], seed, new Dictionary<string, TimeSpan>(StringComparer.Ordinal) { ["node-5"] = TimeSpan.FromSeconds(30) }, null);
        return plan.Validated(duration);
    }

    /// <summary>The plan for <paramref name="duration"/>: <see cref="Full"/> (limited to <paramref name="only"/> when given) from 120 s, else <see cref="Brief"/>.</summary>
    public static FaultPlan For(TimeSpan duration, TimeSpan sessionTtl, int seed, IReadOnlySet<FaultKind>? only = null) =>
        duration >= TimeSpan.FromSeconds(120) ? Full(duration, sessionTtl, seed, only) : Brief(duration, sessionTtl, seed);

    private static void Lane(List<PlannedFault> faults, Random random, TimeSpan usable, TimeSpan first, IReadOnlyList<Func<TimeSpan, PlannedFault>> cycle,
        IReadOnlySet<FaultKind>? only)
    {
        var at = first + TimeSpan.FromSeconds(random.Next(0, 4));
        cycle = only is null ? cycle : [.. cycle.Where(make => only.Contains(make(TimeSpan.Zero).Kind))];
        if (cycle.Count == 0)
        {
            return;
        }

        for (var i = 0; ; i++)
        {
            var fault = cycle[i % cycle.Count](at);
            if (fault.Until > usable)
            {
                return;
            }

            faults.Add(fault);
            at = fault.Until + TimeSpan.FromSeconds(random.Next(4, 9));
        }
    }

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
