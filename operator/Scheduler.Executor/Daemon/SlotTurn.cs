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
        var step = rankDelay;
        if (window > TimeSpan.Zero && window / (WindowShare * contenders) < step)
        {
            step = window / (WindowShare * contenders);
        }

        if (rank < contenders)
        {
            return new SlotTurn(step * rank, Backstop: false);
        }

        var backstops = Math.Max(1, nodes - contenders);
        return new SlotTurn((step * contenders) + (step * Math.Min(rank - contenders, backstops - 1) / backstops), Backstop: true);
    }
}
