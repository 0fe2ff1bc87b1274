using System.Globalization;

namespace Dtask.Chaos.Hosts;

/// <summary>
/// The wrong host clock of one executor: libfaketime (<c>LD_PRELOAD</c>) reads the offset from a file re-read every
/// second (<c>FAKETIME_TIMESTAMP_FILE</c>, <c>FAKETIME_CACHE_DURATION=1</c>), so it can be fixed from the start and jump
/// while the executor runs; the monotonic clock stays true. The executor's gateway (its agent) is set to the same offset
/// at the same time: in a real deployment both share the host clock.
/// </summary>
public sealed class NodeClock
{
    private readonly string file;
    private readonly NodeGateway gateway;

    /// <summary>A clock at <paramref name="initial"/>, its offset kept in <paramref name="file"/>.</summary>
    public NodeClock(string file, string libfaketime, NodeGateway gateway, TimeSpan initial)
    {
        this.file = file;
        this.gateway = gateway ?? throw new ArgumentNullException(nameof(gateway));
        Environment = new Dictionary<string, string>
        {
            ["LD_PRELOAD"] = libfaketime,
            ["FAKETIME_TIMESTAMP_FILE"] = file,
            ["FAKETIME_CACHE_DURATION"] = "1",
            ["FAKETIME_DONT_FAKE_MONOTONIC"] = "1",
        };
        Set(initial);
    }

    /// <summary>The environment of a process on this clock.</summary>
    public IReadOnlyDictionary<string, string> Environment { get; }

    /// <summary>The offset now.</summary>
    public TimeSpan Offset { get; private set; }

    /// <summary>Sets the offset of the executor's clock and of its agent's (a jump when the executor runs), to the millisecond.</summary>
    public void Set(TimeSpan offset)
    {
        var milliseconds = (long)Math.Round(offset.TotalMilliseconds);
        File.WriteAllText(file + ".new", Format(TimeSpan.FromMilliseconds(milliseconds)) + "\n");
        File.Move(file + ".new", file, overwrite: true);
        Offset = TimeSpan.FromMilliseconds(milliseconds);
        gateway.ClockOffset = Offset;
    }

    /// <summary>The offset as libfaketime reads it from its file: <c>+30s</c>, <c>-1.25s</c>.</summary>
    public static string Format(TimeSpan offset) =>
        (offset >= TimeSpan.Zero ? "+" : "-") + offset.Duration().TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture) + "s";

    /// <summary>
    /// The offset of a drift to <paramref name="peak"/> and back over <paramref name="hold"/>, <paramref name="elapsed"/>
    /// into it: a steady rate out for the first half, the same rate back in the second, <paramref name="from"/> at both ends.
    /// </summary>
    public static TimeSpan Drift(TimeSpan from, TimeSpan peak, TimeSpan hold, TimeSpan elapsed)
    {
        if (hold <= TimeSpan.Zero || elapsed <= TimeSpan.Zero || elapsed >= hold)
        {
            return from;
        }

        var half = hold / 2;
        var share = elapsed <= half ? elapsed / half : (hold - elapsed) / half;
        return from + (peak * share);
    }
}
