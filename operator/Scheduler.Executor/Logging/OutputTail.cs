using System.Text;

namespace Dtask.Executor.Logging;

/// <summary>
/// The last bytes of a child's output, kept in a ring for the run record and the failure notification.
/// Safe to append from the stdout and stderr readers at once.
/// </summary>
public sealed class OutputTail
{
    /// <summary>The default size: 4 KiB.</summary>
    public const int DefaultCapacity = 4 * 1024;

    private readonly byte[] ring;
    private readonly Lock gate = new();
    private int start;
    private int count;
    private long total;

    /// <summary>Creates an empty tail.</summary>
    /// <param name="capacity">How many bytes to keep.</param>
    public OutputTail(int capacity = DefaultCapacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 4);
        ring = new byte[capacity];
    }

    /// <summary>How many bytes were ever appended.</summary>
    public long TotalBytes
    {
        get
        {
            lock (gate)
            {
                return total;
            }
        }
    }

    /// <summary>Whether older output was dropped.</summary>
    public bool Truncated
    {
        get
        {
            lock (gate)
            {
                return total > count;
            }
        }
    }

    /// <summary>Appends bytes; only the last <c>capacity</c> bytes are kept.</summary>
    /// <param name="bytes">The bytes.</param>
    public void Append(ReadOnlySpan<byte> bytes)
    {
        lock (gate)
        {
            total += bytes.Length;
            if (bytes.Length >= ring.Length)
            {
                bytes[^ring.Length..].CopyTo(ring);
                start = 0;
                count = ring.Length;
                return;
            }

            var end = (start + count) % ring.Length;
            var first = Math.Min(bytes.Length, ring.Length - end);
            bytes[..first].CopyTo(ring.AsSpan(end));
            bytes[first..].CopyTo(ring);
            var overflow = count + bytes.Length - ring.Length;
            if (overflow > 0)
            {
                start = (start + overflow) % ring.Length;
                count = ring.Length;
            }
            else
            {
                count += bytes.Length;
            }
        }
    }

    /// <summary>The kept bytes, oldest first, starting at a UTF-8 character boundary.</summary>
    /// <returns>The bytes.</returns>
    public byte[] ToArray()
    {
        byte[] linear;
        lock (gate)
        {
            linear = new byte[count];
            var first = Math.Min(count, ring.Length - start);
            ring.AsSpan(start, first).CopyTo(linear);
            ring.AsSpan(0, count - first).CopyTo(linear.AsSpan(first));
            if (total == count)
            {
                return linear;
            }
        }

        // The ring's start may fall inside a multi-byte character: skip its continuation bytes (at most three).
        var skip = 0;
        while (skip < Math.Min(3, linear.Length) && (linear[skip] & 0xC0) == 0x80)
        {
            skip++;
        }

        return linear[skip..];
    }

    /// <summary>The kept output as text (invalid UTF-8 becomes U+FFFD).</summary>
    /// <returns>The text.</returns>
    public override string ToString() => Encoding.UTF8.GetString(ToArray());
}
