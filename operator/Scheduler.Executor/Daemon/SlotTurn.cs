namespace Dtask.Executor.Daemon;

/// <summary>When a node of a given rank looks at a slot, and how.</summary>
/// <param name="Wait">How long after the slot's fire time the node looks.</param>
/// <param name="Backstop">
/// True for a node ranked past the contenders: it claims only if the slot still looks unclaimed at its look (the
/// contenders are all dead or cut off), so a slot is never lost silently.
/// </param>
public sealed record SlotTurn(TimeSpan Wait, bool Backstop)
{
    /// <summary>
    /// How many backstops, the nodes ranked right after the <paramref name="contenders"/>, look at every slot: K−1, at
    /// least one. Later ranks look only when nodes ranked above them have left the fleet.
    /// </summary>
    public static int Watchers(int contenders) => Math.Max(1, contenders - 1);

    /// <summary>A step is at most the slot's window (fire time to deadline) divided by this and by K.</summary>
    public const int WindowShare = 4;

    /// <summary>One rank step: min(<paramref name="rankDelay"/>, <paramref name="window"/> / (<see cref="WindowShare"/>·<paramref name="contenders"/>)) (the delay alone when the window is unknown).</summary>
    public static TimeSpan Step(int contenders, TimeSpan rankDelay, TimeSpan window)
    {
        contenders = Math.Max(1, contenders);
        return window > TimeSpan.Zero && window / (WindowShare * contenders) < rankDelay ? window / (WindowShare * contenders) : rankDelay;
    }

    /// <summary>
    /// When a node whose turn is <paramref name="turn"/> looks at a slot due at <paramref name="fireTime"/>, having begun to
    /// contend for it at <paramref name="began"/>: <paramref name="turn"/>'s wait after the fire time; or, when it began
    /// more than <paramref name="step"/> late, that wait after it began. The fleet's nodes begin late alike when they all
    /// plan a slot that is already due (the task changed, Consul came back, a loaded machine woke them late): each still
    /// waits its turn, so the nodes ranked above it look first instead of all claiming at once. A node on time (within a
    /// step) keeps its turn after the fire time, so a dead first-ranked node still costs one step. Never later than
    /// half-way to <paramref name="deadline"/> for that reason (a node later than that looks at once, as it would have).
    /// </summary>
    public static DateTimeOffset LookAt(SlotTurn turn, DateTimeOffset fireTime, DateTimeOffset deadline, DateTimeOffset began, TimeSpan step)
    {
        ArgumentNullException.ThrowIfNull(turn);
        var nominal = fireTime + turn.Wait;
        if (began - fireTime <= step || turn.Wait <= TimeSpan.Zero)
        {
            return nominal;
        }

        var delayed = began + turn.Wait;
        if (deadline > fireTime && deadline != DateTimeOffset.MaxValue)
        {
            var halfway = fireTime + ((deadline - fireTime) / 2);
            delayed = delayed < halfway ? delayed : halfway;
        }

        return delayed > nominal ? delayed : nominal;
    }

    /// <summary>
    /// The turn of the node ranked <paramref name="rank"/> (0: first) of <paramref name="nodes"/> for a slot whose window
    /// is <paramref name="window"/> (zero: unknown): the first <paramref name="contenders"/> ranks look at k·step; the later
    /// ranks are backstops, spread over the next step in rank order (so the first backstop to find the slot unclaimed
    /// claims it and the others see it claimed), where step = min(δ, window / (<see cref="WindowShare"/>·contenders)).
    /// So no node waits past (K+1)/4K of the window (half of it at most), a dead first-ranked node costs one step (at most
    /// δ), and the number of nodes that may write for a slot does not grow with the fleet.
    /// </summary>
    public static SlotTurn Of(int rank, int nodes, int contenders, TimeSpan rankDelay, TimeSpan window)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rank);
        contenders = Math.Max(1, contenders);
        var step = Step(contenders, rankDelay, window);

        if (rank < contenders)
        {
            return new SlotTurn(step * rank, Backstop: false);
        }

        var backstops = Math.Max(1, nodes - contenders);
        return new SlotTurn((step * contenders) + (step * Math.Min(rank - contenders, backstops - 1) / backstops), Backstop: true);
    }
}
