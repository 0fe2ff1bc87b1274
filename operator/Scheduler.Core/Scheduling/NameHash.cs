using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace Dtask.Core.Scheduling;

/// <summary>
/// Numbers derived from a task's hash key (<c>namespace/name</c>) and a purpose, identical on every machine and
/// in every process: SHA-256 of the UTF-8 text <c>key + '\n' + purpose</c>, first eight bytes big-endian.
/// Seeds <c>H</c> cron fields and the per-slot jitter. (<see cref="string.GetHashCode()"/> is randomised per
/// process and must never be used for this.)
/// </summary>
public static class NameHash
{
    /// <summary>A 64-bit value for (<paramref name="key"/>, <paramref name="purpose"/>).</summary>
    public static ulong Of(string key, string purpose)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(purpose);
        var bytes = Encoding.UTF8.GetBytes(key + "\n" + purpose);
        Span<byte> digest = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(bytes, digest);
        return BinaryPrimitives.ReadUInt64BigEndian(digest);
    }

    /// <summary>A value in <c>[0, <paramref name="count"/>)</c> for (<paramref name="key"/>, <paramref name="purpose"/>).</summary>
    public static long Pick(string key, string purpose, long count)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        return (long)(Of(key, purpose) % (ulong)count);
    }
}
