using System.Collections.Concurrent;

namespace Dtask.Core.State;

/// <summary>
/// Remembers which KV keys were found unreadable at which ModifyIndex, so a daemon logs a garbage value once — again
/// only when the value changes — rather than on every pass or watch wake-up. Thread-safe; holds one entry per bad key.
/// </summary>
public sealed class UnreadableKeys
{
    private readonly ConcurrentDictionary<string, ulong> reported = new(StringComparer.Ordinal);

    /// <summary>Records that <paramref name="key"/> is unreadable at <paramref name="modifyIndex"/>; true the first time for that value.</summary>
    public bool FirstTime(string key, ulong modifyIndex)
    {
        ArgumentNullException.ThrowIfNull(key);
        var first = true;
        reported.AddOrUpdate(key, modifyIndex, (_, previous) =>
        {
            first = previous != modifyIndex;
            return modifyIndex;
        });
        return first;
    }

    /// <summary>Forgets <paramref name="key"/> (it was read fine, or removed), so it is reported again if it goes bad.</summary>
    public void Readable(string key) => reported.TryRemove(key, out _);

    /// <summary>Forgets every key not in <paramref name="present"/> (removed keys).</summary>
    public void KeepOnly(IReadOnlySet<string> present)
    {
        ArgumentNullException.ThrowIfNull(present);
        foreach (var key in reported.Keys)
        {
            if (!present.Contains(key))
            {
                reported.TryRemove(key, out _);
            }
        }
    }
}
