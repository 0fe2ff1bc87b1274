using System.Globalization;

namespace Dtask.Executor.Processes;

/// <summary>What a line sent to the child watchdog asks.</summary>
public enum WatchdogVerb
{
    /// <summary>A child process group started: <c>+PGID</c>.</summary>
    Register,

    /// <summary>A child process group ended: <c>-PGID</c>.</summary>
    Unregister,

    /// <summary>The session is known valid for this much longer: <c>lease MILLISECONDS</c>.</summary>
    Lease,

    /// <summary>The owner stopped in order: <c>exit</c>; the watchdog leaves without signalling anything.</summary>
    Exit,
}

/// <summary>One line of the watchdog protocol, parsed.</summary>
/// <param name="Verb">What is asked.</param>
/// <param name="Value">The process group id (<see cref="WatchdogVerb.Register"/>, <see cref="WatchdogVerb.Unregister"/>) or the
/// lease in milliseconds (<see cref="WatchdogVerb.Lease"/>); 0 for <see cref="WatchdogVerb.Exit"/>.</param>
public readonly record struct WatchdogLine(WatchdogVerb Verb, long Value)
{
    /// <summary>The line's text, without the newline.</summary>
    public override string ToString() => Verb switch
    {
        WatchdogVerb.Register => "+" + Value.ToString(CultureInfo.InvariantCulture),
        WatchdogVerb.Unregister => "-" + Value.ToString(CultureInfo.InvariantCulture),
        WatchdogVerb.Lease => "lease " + Value.ToString(CultureInfo.InvariantCulture),
        _ => "exit",
    };
}

/// <summary>
/// The line protocol between an executor (or <c>dtask run</c>) and its child watchdog, over the watchdog's stdin: one
/// command per line, <c>+PGID</c>, <c>-PGID</c>, <c>lease MILLISECONDS</c>, <c>exit</c>. End of input means the owner is
/// gone (died by any signal, or exited): the watchdog stops every registered group.
/// </summary>
public static class WatchdogProtocol
{
    /// <summary>Parses one line (surrounding white space ignored); null when it is not a command (an unknown line is ignored, never fatal).</summary>
    public static WatchdogLine? Parse(string? line)
    {
        var text = line?.Trim();
        if (string.IsNullOrEmpty(text))
        {
            return null;
        }

        if (text == "exit")
        {
            return new WatchdogLine(WatchdogVerb.Exit, 0);
        }

        if (text[0] is '+' or '-')
        {
            // A group id is a pid: above 1 (never init, never "every process" that -1 would mean to kill).
            return Number(text.AsSpan(1)) is { } pgid && pgid > 1 && pgid <= int.MaxValue
                ? new WatchdogLine(text[0] == '+' ? WatchdogVerb.Register : WatchdogVerb.Unregister, pgid)
                : null;
        }

        if (text.StartsWith("lease ", StringComparison.Ordinal))
        {
            return Number(text.AsSpan(6).Trim()) is { } ms ? new WatchdogLine(WatchdogVerb.Lease, ms) : null;
        }

        return null;
    }

    private static long? Number(ReadOnlySpan<char> digits) =>
        digits.Length is > 0 and <= 18 && long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var value) ? value : null;
}
