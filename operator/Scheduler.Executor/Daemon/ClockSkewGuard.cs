using System.Globalization;
using Dtask.Consul.Http;
using Dtask.Core.State;
using Serilog;

namespace Dtask.Executor.Daemon;

/// <summary>This node's clock skew as the guard last estimated it.</summary>
/// <param name="Estimate">This clock minus the references' (median), or null while there is no reference.</param>
/// <param name="Skewed">True while the estimate is beyond the limit: nothing is written from this clock.</param>
/// <param name="References">How many references the estimate rests on.</param>
/// <param name="AwaitingPeers">True while other executors are registered but fewer than most of their clocks (at least
/// two; one, when there is only one other) have been timed yet (just started): nothing is written from this clock until they are, or
/// <see cref="ClockSkewGuard.StampMaxAge"/> passed.</param>
public sealed record ClockSkewState(TimeSpan? Estimate, bool Skewed, int References, bool AwaitingPeers = false);

/// <summary>
/// Estimates how far this machine's clock is from clocks that are not its own, and says whether this node may write
/// task state (claims and the skipped, missed and abandoned markers are all decided by this clock). The references are
/// the Consul agent's clock (the <c>Date</c> header of its answers) and the wall clock every other live executor
/// publishes in its registration (<see cref="NodeRecord.Clock"/>, refreshed every <see cref="StampInterval"/>).
/// </summary>
/// <remarks>
/// <para>Each observation is kept with the monotonic timestamp of its arrival and extrapolated with the monotonic
/// clock: at any later moment the estimate against a reference is <c>(wall now − monotonic time since the arrival) −
/// the reference's reading</c>, so a jump of this node's wall clock shows at once, not at the next observation.</para>
/// <para>The agent's header has a one-second resolution and is stamped somewhere during the request, so it bounds the
/// skew to an interval; the value of the interval closest to zero is taken (the benefit of the doubt). Answers that took
/// longer than <see cref="MaxRoundTrip"/> (blocking queries that waited) are not used. A peer's stamp
/// is read when the nodes watch delivers it, within the blocking query's delivery latency (milliseconds) of its write;
/// a stamp that was already there when the watch (re)started is not timed and is not used. A peer's timed stamps stay
/// references while it is registered, for up to <see cref="SampleMaxAge"/>, extrapolated with this node's monotonic clock
/// (so a node whose timings stop keeps its peers' testimony); a peer no longer registered is dropped. A delay between a stamp and its reading
/// (a loaded machine, a slow write) can only make this clock look ahead: of a peer's last three fresh stamps the lowest
/// estimate counts, less up to <see cref="PeerAllowance"/>.</para>
/// <para>The skew is the median of the estimates; with an even number the one of the two middle values closest to zero
/// is taken, so two clocks that disagree never block the node whose clock is right. Two clocks cannot tell which one is
/// wrong: a skewed node is recognised when the agent is on another clock (a shared agent, a server) or when three or
/// more executors run. The node is skewed while the estimate's magnitude exceeds the limit; each change of state is
/// logged once, and <see cref="Changed"/> is raised so the registration shows it. A skewed node comes back only when a
/// strict majority of its references is within the limit, and never on the agent's word alone while other executors
/// are registered or were timed within <see cref="SampleMaxAge"/> (the agent may share this clock; a listing without them
/// may be a restarted server's).</para>
/// <para>A peer whose registration says its own clock is skewed may help convict a node but not convict it alone: the
/// median convicts only when a reference that is not such a peer (or two such peers that agree with each other) puts this
/// clock beyond the limit on the same side. So peers that are off and known to be (one 30 s ahead, one that jumped an
/// hour) cannot convict a node whose agent agrees with it, while they still tip the balance beside a right peer, and
/// right peers that were convicted for a moment still agree with each other.</para>
/// </remarks>
public sealed class ClockSkewGuard(TimeSpan limit, TimeProvider time, ILogger logger, string? node = null)
{
    /// <summary>How often an executor refreshes the clock stamp of its registration (0.1 writes per second per node).</summary>
    public static readonly TimeSpan StampInterval = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Three refresh intervals: until then after start, a node waits for its peers' clocks to be timed; a registration
    /// whose stamp is older than this is not known to be up (see <c>SlotContender</c>'s watchers).
    /// </summary>
    public static readonly TimeSpan StampMaxAge = StampInterval * 3;

    /// <summary>
    /// How long a peer's timed stamp stays a reference while the peer is registered, extrapolated with this node's
    /// monotonic clock: a jump or drift of this clock since shows against it at once, and a peer that is not registered
    /// any more is dropped at once. So a node whose fresh timings stop (a loaded machine, a cut-off server) keeps its peers'
    /// testimony instead of falling back on an agent that may share its clock.
    /// </summary>
    public static readonly TimeSpan SampleMaxAge = TimeSpan.FromMinutes(10);

    /// <summary>A nodes-watch answer whose request was sent later than this after the previous answer may deliver a stamp
    /// written well before it arrived: its stamps are not timed.</summary>
    public static readonly TimeSpan MaxWatchGap = TimeSpan.FromSeconds(1);

    /// <summary>An agent's answer that took longer than this (a blocking query that waited) is not used: the header
    /// was stamped somewhere in that time.</summary>
    public static readonly TimeSpan MaxRoundTrip = TimeSpan.FromSeconds(1);

    /// <summary>How much of a peer estimate that says this clock is ahead is put down to the delay between the stamp
    /// and its reading (a loaded machine, a slow write), as the agent's header is allowed its one-second resolution.</summary>
    public static readonly TimeSpan PeerAllowance = TimeSpan.FromSeconds(1);

    private static readonly TimeSpan Resolution = TimeSpan.FromSeconds(1);
    private readonly Lock gate = new();
    private readonly Dictionary<string, Peer> peers = new(StringComparer.Ordinal);
    private Agent? agent;
    private readonly long created = time.GetTimestamp();
    private long? lastNodesAnswer;
    private long? lastTimedPeers;
    private int listedPeers;
    private int joinPending;
    private bool skewed;
    private bool awaitingLogged;
    private bool awaitingEndLogged;

    /// <summary>Raised (outside the guard's lock) when the node becomes skewed or comes back within the limit.</summary>
    public event Action? Changed;

    /// <summary>Raised (outside the guard's lock) when the nodes watch shows a node it did not know: publishing a fresh
    /// stamp at once gives the newcomer a timed reference for this clock without waiting for the next interval.</summary>
    public event Action? PeerJoined;

    /// <summary>The limit beyond which the node is skewed.</summary>
    public TimeSpan Limit => limit;

    /// <summary>
    /// True unless this clock is beyond the limit now, or the node has just started and the other executors it sees have
    /// not been timed yet (most of them, and at least two: enough to outvote its agent, which may share its clock): claims and markers may be
    /// written. Evaluated at each call.
    /// </summary>
    public bool MayWrite => Evaluate() is { Skewed: false, AwaitingPeers: false };

    /// <summary>Same as <see cref="MayWrite"/>.</summary>
    public bool MayClaim => MayWrite;

    /// <summary>The estimate now (evaluated at each call).</summary>
    public ClockSkewState Current => Evaluate();

    /// <summary>The skew estimate: this clock minus the references' (median), zero while there is none.</summary>
    public TimeSpan LastSkew => Evaluate().Estimate ?? TimeSpan.Zero;

    /// <summary>Takes one answer's metadata from the Consul agent, received just now.</summary>
    public void Observe(ConsulResponseMeta meta)
    {
        ArgumentNullException.ThrowIfNull(meta);
        if (meta.ServerDate is not { } date || meta.RequestTime > MaxRoundTrip)
        {
            return; // A blocking query's answer is stamped when it returns, not when it was sent: it bounds nothing useful.
        }

        var received = time.GetUtcNow();
        var sent = received - meta.RequestTime;
        lock (gate)
        {
            // This clock minus the agent's lies in [low, high] at the arrival.
            agent = new Agent(sent - (date + Resolution), received - date, received, time.GetTimestamp());
        }

        Evaluate();
    }

    /// <summary>
    /// Takes one answer of the nodes watch, received just now: <paramref name="nodes"/> when its listing changed, null
    /// when it did not. A peer's stamp is timed only when it is new and the answer followed the previous one closely.
    /// </summary>
    public void ObservePeers(IReadOnlyList<NodeRecord>? nodes, ConsulResponseMeta meta)
    {
        ArgumentNullException.ThrowIfNull(meta);
        var now = time.GetTimestamp();
        var joined = false;
        lock (gate)
        {
            var timely = lastNodesAnswer is { } previous && time.GetElapsedTime(previous, now) - meta.RequestTime <= MaxWatchGap;
            lastNodesAnswer = now;
            if (nodes is null)
            {
                return;
            }

            listedPeers = nodes.Count(n => n.Node != node && n.Clock is not null);

            var live = new HashSet<string>(StringComparer.Ordinal);
            foreach (var record in nodes)
            {
                if (record.Node == node || record.Clock is not { } stamp)
                {
                    continue;
                }

                live.Add(record.Node);
                var saysSkewed = record.State == NodeRecord.ClockSkewed;
                if (peers.TryGetValue(record.Node, out var known))
                {
                    if (known.Stamp == stamp)
                    {
                        peers[record.Node] = known with { SaysSkewed = saysSkewed };
                        continue;
                    }
                }
                else
                {
                    // New to this node, timed or not (two nodes that start together each find the other in their first,
                    // untimed answer): a fresh stamp of this clock lets it time this one without waiting for the interval.
                    joined = true;
                }

                // Timed samples of this peer still fresh, newest last (at most three).
                var samples = known?.Samples.Where(x => time.GetElapsedTime(x.Arrival, now) <= SampleMaxAge).ToList() ?? [];
                if (timely)
                {
                    samples.Add(new Sample(stamp, now));
                }

                peers[record.Node] = new Peer(stamp, [.. samples.TakeLast(3)], saysSkewed);
            }

            foreach (var gone in peers.Keys.Where(k => !live.Contains(k)).ToList())
            {
                peers.Remove(gone);
            }
        }

        if (joined)
        {
            Volatile.Write(ref joinPending, 1);
            PeerJoined?.Invoke();
        }

        Evaluate();
    }

    /// <summary>True (once) when a node joined since the last call: for a stamper that subscribes to <see cref="PeerJoined"/>
    /// after the first answers arrived.</summary>
    public bool TakePeerJoined() => Interlocked.Exchange(ref joinPending, 0) == 1;

    /// <summary>
    /// The median of <paramref name="estimates"/>; of the two middle values of an even number, the one closest to zero.
    /// Null when there are none.
    /// </summary>
    public static TimeSpan? Median(IReadOnlyList<TimeSpan> estimates)
    {
        ArgumentNullException.ThrowIfNull(estimates);
        if (estimates.Count == 0)
        {
            return null;
        }

        var sorted = estimates.Order().ToList();
        var middle = sorted.Count / 2;
        if (sorted.Count % 2 == 1)
        {
            return sorted[middle];
        }

        var (a, b) = (sorted[middle - 1], sorted[middle]);
        return a.Duration() <= b.Duration() ? a : b;
    }

    private ClockSkewState Evaluate()
    {
        var now = time.GetTimestamp();
        var wall = time.GetUtcNow();
        var references = new List<(string Name, TimeSpan Estimate, bool SaysSkewed)>();
        var counted = new List<(string Name, TimeSpan Estimate, bool SaysSkewed)>();
        bool changed;
        bool logAwaiting;
        bool logAwaitingEnd;
        int timedNow;
        int peersNow;
        ClockSkewState result;
        lock (gate)
        {
            if (agent is { } a)
            {
                // How far this wall clock moved beyond the monotonic clock since the arrival (a jump shows here).
                var moved = wall - time.GetElapsedTime(a.Arrival, now) - a.ReceivedAt;
                var low = a.Low + moved;
                var high = a.High + moved;
                references.Add(("Consul agent", low > TimeSpan.Zero ? low : high < TimeSpan.Zero ? high : TimeSpan.Zero, false));
            }

            foreach (var (name, peer) in peers)
            {
                // A delay between a stamp and its reading only makes this clock look further ahead: of the fresh
                // samples the lowest estimate is the tightest, and up to PeerAllowance of it may be such a delay.
                TimeSpan? lowest = null;
                foreach (var sample in peer.Samples)
                {
                    var age = time.GetElapsedTime(sample.Arrival, now);
                    if (age <= SampleMaxAge && (wall - age - sample.Stamp) is var offset && (lowest is null || offset < lowest))
                    {
                        lowest = offset;
                    }
                }

                if (lowest is { } l)
                {
                    references.Add(("node " + name, l > PeerAllowance ? l - PeerAllowance : l > TimeSpan.Zero ? TimeSpan.Zero : l, peer.SaysSkewed));
                }
            }

            // A peer whose own registration says its clock is skewed may help convict this node, but not convict it alone:
            // the median of all references convicts only when a reference that is not such a peer (or two such peers that
            // agree with each other) puts this clock beyond the limit on the same side. Otherwise the estimate is the median
            // of those references. So peers that are off and known to be (one 30 s ahead, one that jumped an hour) cannot
            // convict a node whose agent agrees with it, while they still tip the balance beside a right peer.
            counted.AddRange(references.Where(r => !r.SaysSkewed
                || references.Any(o => o.Name != r.Name && (o.Estimate - r.Estimate).Duration() <= limit)));
            var median = Median([.. references.Select(r => r.Estimate)]);
            var witnessed = median is { } m && counted.Any(r => r.Estimate.Duration() > limit && (r.Estimate > TimeSpan.Zero) == (m > TimeSpan.Zero));
            var estimate = witnessed ? median : Median([.. counted.Select(r => r.Estimate)]) ?? median;

            // Becoming skewed takes that estimate beyond the limit. Coming back takes a strict majority of all the references
            // within it: when references drop out (a peer killed, a stamp gone stale), the benefit of the doubt an even
            // count gives must not hand a convicted clock back to a lone agent that shares it.
            // Nor may the agent alone hand it back while other executors are registered whose clocks are not timed now.
            var within = references.Count(r => r.Estimate.Duration() <= limit);
            var timedPeers = references.Count(r => r.Name.StartsWith("node ", StringComparison.Ordinal));
            // Until most peers are timed (at least two, to outvote the agent; one when there is only one), the agent alone may speak for
            // this clock: a local agent shares it. Nothing is written then, and no verdict is reached on the first few clocks timed.
            var awaiting = timedPeers < Math.Min(Math.Max(2, listedPeers / 2 + 1), listedPeers) && time.GetElapsedTime(created, now) < StampMaxAge;
            if (timedPeers > 0)
            {
                lastTimedPeers = now;
            }

            // A listing that shows no peer at all (a restarted server's, before it caught up) does not leave the agent
            // alone to acquit this clock either: not while peers were timed within SampleMaxAge.
            var peersLately = lastTimedPeers is { } seen && time.GetElapsedTime(seen, now) <= SampleMaxAge;
            var beyond = awaiting ? skewed : skewed
                ? (timedPeers == 0 && (listedPeers > 0 || peersLately)) || (references.Count > 0 && within * 2 <= references.Count)
                : estimate is { } e && e.Duration() > limit;
            changed = beyond != skewed;
            skewed = beyond;
            result = new ClockSkewState(estimate, beyond, references.Count, awaiting);
            logAwaiting = awaiting && !awaitingLogged;
            awaitingLogged |= awaiting;
            logAwaitingEnd = awaitingLogged && !awaiting && !awaitingEndLogged;
            awaitingEndLogged |= logAwaitingEnd;
            timedNow = timedPeers;
            peersNow = listedPeers;
        }

        if (logAwaiting)
        {
            logger.Information("clock skew: {Count} other executors registered; not claiming until their clocks are timed (at most {Wait:0} s)",
                peersNow, StampMaxAge.TotalSeconds);
        }

        if (logAwaitingEnd)
        {
            logger.Information("clock skew: {Timed} of {Count} other executors' clocks timed; claiming from now on unless this clock is beyond the limit",
                timedNow, peersNow);
        }

        if (changed)
        {
            var detail = string.Join(", ", references.Select(r => r.Name + " " + Seconds(r.Estimate)
                + (r.SaysSkewed ? counted.Any(c => c.Name == r.Name) ? " (says it is skewed)" : " (says it is skewed; not a witness alone)" : "")));
            var estimate = result.Estimate ?? TimeSpan.Zero;
            if (result.Skewed)
            {
                logger.Error("clock skew: this clock is {Skew:0.0} s {Direction:l} its references (median of {Count}: {References:l}; limit {Limit:0.0} s); "
                    + "not claiming, nor recording any slot skipped, missed or abandoned, until it is back within the limit",
                    estimate.Duration().TotalSeconds, estimate > TimeSpan.Zero ? "ahead of" : "behind", result.References, detail, limit.TotalSeconds);
            }
            else
            {
                logger.Information("clock skew: back within {Limit:0.0} s of its references ({Skew:l}; {References:l}); claiming and recording again",
                    limit.TotalSeconds, Seconds(estimate), detail.Length == 0 ? "no reference left" : detail);
            }

            Changed?.Invoke();
        }

        return result;
    }

    private static string Seconds(TimeSpan value) => value.TotalSeconds.ToString("+0.0;-0.0;0.0", CultureInfo.InvariantCulture) + " s";

    /// <summary>The agent's clock as last seen: this clock minus the agent's within [Low, High] when this clock read ReceivedAt, at monotonic Arrival.</summary>
    private sealed record Agent(TimeSpan Low, TimeSpan High, DateTimeOffset ReceivedAt, long Arrival);

    /// <summary>A peer's last stamp, its timed samples, and whether its registration says its own clock is skewed.</summary>
    private sealed record Peer(DateTimeOffset Stamp, IReadOnlyList<Sample> Samples, bool SaysSkewed = false);

    /// <summary>A peer's stamp and the monotonic timestamp of its arrival.</summary>
    private sealed record Sample(DateTimeOffset Stamp, long Arrival);
}
