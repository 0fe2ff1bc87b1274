using System.Globalization;

namespace Dtask.Core.Scheduling;

/// <summary>
/// One nominal fire time of a task. Its <see cref="Id"/> is the instant in Unix seconds (UTC), so a slot
/// names itself the same way on every node: <c>dtask/state/&lt;ns&gt;/&lt;name&gt;/history/&lt;slot&gt;</c>,
/// <c>DTASK_SLOT</c>. Slots are whole seconds by construction (<c>every</c> must be whole seconds and cron
/// has a one-second resolution).
/// </summary>
/// <param name="Id">Seconds since 1970-01-01T00:00:00Z.</param>
public readonly record struct Slot(long Id) : IComparable<Slot>
{
    /// <summary>The nominal instant of the slot, in UTC.</summary>
    public DateTimeOffset Instant => DateTimeOffset.FromUnixTimeSeconds(Id);

    /// <summary>The slot of <paramref name="instant"/>, which must be a whole second.</summary>
    /// <exception cref="ArgumentException">The instant has a fraction of a second.</exception>
    public static Slot At(DateTimeOffset instant)
    {
        if (instant.UtcTicks % TimeSpan.TicksPerSecond != 0)
        {
            throw new ArgumentException($"a slot is a whole second; {instant:O} is not", nameof(instant));
        }

        return new Slot(instant.ToUnixTimeSeconds());
    }

    /// <summary>Orders slots by time.</summary>
    public int CompareTo(Slot other) => Id.CompareTo(other.Id);

    /// <summary>Earlier than.</summary>
    public static bool operator <(Slot left, Slot right) => left.Id < right.Id;

    /// <summary>Later than.</summary>
    public static bool operator >(Slot left, Slot right) => left.Id > right.Id;

    /// <summary>Earlier than or the same.</summary>
    public static bool operator <=(Slot left, Slot right) => left.Id <= right.Id;

    /// <summary>Later than or the same.</summary>
    public static bool operator >=(Slot left, Slot right) => left.Id >= right.Id;

    /// <summary>The id, as written into keys and environment variables.</summary>
    public override string ToString() => Id.ToString(CultureInfo.InvariantCulture);
}
