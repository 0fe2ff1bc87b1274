using Dtask.Consul.Http;
using Serilog;

namespace Dtask.Executor.Daemon;

/// <summary>
/// Compares this machine's clock with the Consul agent's (<c>Date</c> header of its answers) and says whether claims
/// are allowed. Claims are CAS on the slot number, so a skewed clock cannot fire a slot twice, only early or late;
/// the guard keeps a badly skewed node from firing at all.
/// </summary>
/// <remarks>
/// The header has a one-second resolution and is stamped somewhere during the request, so one answer bounds the skew
/// to an interval: with the request sent at <c>t0</c> and answered at <c>t1</c> (local clock) and the header saying
/// <c>D</c>, the agent's clock read a value in <c>[D, D + 1 s)</c> at some local instant in <c>[t0, t1]</c>. The skew
/// is beyond the limit only when that whole interval is: <c>t0 − (D + 1 s) &gt; limit</c> (this clock ahead) or
/// <c>t1 − D &lt; −limit</c> (this clock behind). The state changes on each observation, and each change is logged
/// once.
/// </remarks>
public sealed class ClockSkewGuard(TimeSpan limit, TimeProvider time, ILogger logger)
{
    private static readonly TimeSpan Resolution = TimeSpan.FromSeconds(1);
    private readonly Lock gate = new();
    private bool skewed;
    private TimeSpan lastSkew;

    /// <summary>True while the last observation was within the limit (or none has been made).</summary>
    public bool MayClaim
    {
        get
        {
            lock (gate)
            {
                return !skewed;
            }
        }
    }

    /// <summary>The skew estimate of the last observation: this clock minus the agent's (midpoint of the bounds).</summary>
    public TimeSpan LastSkew
    {
        get
        {
            lock (gate)
            {
                return lastSkew;
            }
        }
    }

    /// <summary>Takes one answer's metadata, received just now.</summary>
    public void Observe(ConsulResponseMeta meta)
    {
        ArgumentNullException.ThrowIfNull(meta);
        if (meta.ServerDate is not { } date)
        {
            return;
        }

        var received = time.GetUtcNow();
        var sent = received - meta.RequestTime;
        var ahead = sent - (date + Resolution);
        var behind = received - date;
        var estimate = ((sent - date) + (received - (date + Resolution))) / 2;
        var beyond = ahead > limit || behind < -limit;
        bool changed;
        lock (gate)
        {
            lastSkew = estimate;
            changed = beyond != skewed;
            skewed = beyond;
        }

        if (!changed)
        {
            return;
        }

        if (beyond)
        {
            logger.Error("clock skew: this clock is {Skew:0.0} s {Direction:l} the Consul agent's (limit {Limit:0.0} s); not claiming any slot until it is back within the limit",
                Math.Abs(estimate.TotalSeconds), estimate > TimeSpan.Zero ? "ahead of" : "behind", limit.TotalSeconds);
        }
        else
        {
            logger.Information("clock skew: back within {Limit:0.0} s of the Consul agent's clock ({Skew:0.0} s); claiming again", limit.TotalSeconds, estimate.TotalSeconds);
        }
    }
}
