using System.Globalization;

namespace Dtask.Consul.Sessions;

/// <summary>What happens to the locks a session holds when it is invalidated.</summary>
public enum SessionBehavior
{
    /// <summary>The locks are released; the keys stay.</summary>
    Release,

    /// <summary>The locked keys are deleted (for presence keys such as <c>dtask/nodes/&lt;node&gt;</c>).</summary>
    Delete,
}

/// <summary>A session to create. It is TTL-only (<c>NodeChecks: []</c>): it lives while it is renewed.</summary>
/// <param name="Name">A human-readable name.</param>
/// <param name="Ttl">Between 10 s and 24 h. Consul invalidates a session only after up to twice its TTL.</param>
public sealed record SessionRequest(string Name, TimeSpan Ttl)
{
    /// <summary>Consul's minimum TTL.</summary>
    public static readonly TimeSpan MinimumTtl = TimeSpan.FromSeconds(10);

    /// <summary>
    /// After the session is invalidated, its locks cannot be acquired by anyone for this long (Consul's
    /// default is 15 s; 0 disables it).
    /// </summary>
    public TimeSpan LockDelay { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>Release (default) or delete the held keys when the session ends.</summary>
    public SessionBehavior Behavior { get; init; } = SessionBehavior.Release;

    /// <summary>The node to create the session on; the agent's own node when null.</summary>
    public string? Node { get; init; }
}

/// <summary>A session as Consul reports it.</summary>
public sealed record SessionInfo(
    string Id,
    string Name,
    string Node,
    TimeSpan Ttl,
    TimeSpan LockDelay,
    SessionBehavior Behavior,
    ulong CreateIndex,
    ulong ModifyIndex)
{
    internal static SessionInfo FromWire(SessionWire wire) => new(
        wire.ID, wire.Name ?? "", wire.Node ?? "", ParseDuration(wire.TTL),
        TimeSpan.FromTicks(wire.LockDelay / 100),
        string.Equals(wire.Behavior, "delete", StringComparison.Ordinal) ? SessionBehavior.Delete : SessionBehavior.Release,
        wire.CreateIndex, wire.ModifyIndex);

    /// <summary>Parses the Go durations Consul writes for TTLs (<c>10s</c>, <c>1m30s</c>, <c>500ms</c>).</summary>
    internal static TimeSpan ParseDuration(string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return TimeSpan.Zero;
        }
        var total = TimeSpan.Zero;
        var i = 0;
        while (i < text.Length)
        {
            var start = i;
            while (i < text.Length && (char.IsAsciiDigit(text[i]) || text[i] == '.'))
            {
                i++;
            }
            var number = double.Parse(text.AsSpan(start, i - start), NumberStyles.Float, CultureInfo.InvariantCulture);
            var unitStart = i;
            while (i < text.Length && !char.IsAsciiDigit(text[i]))
            {
                i++;
            }
            total += text[unitStart..i] switch
            {
                "h" => TimeSpan.FromHours(number),
                "m" => TimeSpan.FromMinutes(number),
                "s" => TimeSpan.FromSeconds(number),
                "ms" => TimeSpan.FromMilliseconds(number),
                "us" or "µs" => TimeSpan.FromMicroseconds(number),
                "ns" => TimeSpan.FromTicks((long)(number / 100)),
                var unit => throw new FormatException($"unknown duration unit '{unit}' in '{text}'"),
            };
        }
        return total;
    }
}

internal sealed record SessionCreateWire(string Name, string TTL, string LockDelay, string Behavior, string? Node, List<string> NodeChecks);

internal sealed record SessionIdWire(string ID);

internal sealed record SessionWire(string ID, string? Name, string? Node, long LockDelay, string? Behavior, string? TTL, ulong CreateIndex, ulong ModifyIndex);
