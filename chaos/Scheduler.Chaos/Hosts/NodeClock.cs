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

    /// <summary>Sets the offset of the executor's clock and of its agent's (a jump when the executor runs).</summary>
    public void Set(TimeSpan offset)
    {
        var seconds = (long)Math.Round(offset.TotalSeconds);
        var text = (seconds >= 0 ? "+" : "") + seconds.ToString(CultureInfo.InvariantCulture) + "s";
        var temporary = file + ".new";
        File.WriteAllText(temporary, text + "\n");
        File.Move(temporary, file, overwrite: true);
        Offset = TimeSpan.FromSeconds(seconds);
        gateway.ClockOffset = Offset;
    }
}
