using System.Buffers.Binary;
using System.Text;

namespace Dtask.Executor.Tests.Logging;

/// <summary>Parses journald's native protocol, independently of the encoder, to check what it wrote.</summary>
internal static class JournalDatagram
{
    public static Dictionary<string, string> Parse(byte[] datagram)
    {
        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        var span = datagram.AsSpan();
        while (!span.IsEmpty)
        {
            var newline = span.IndexOf((byte)'\n');
            Assert.True(newline > 0, "every field ends with a newline");
            var head = span[..newline];
            var equals = head.IndexOf((byte)'=');
            if (equals >= 0)
            {
                fields[Encoding.ASCII.GetString(head[..equals])] = Encoding.UTF8.GetString(head[(equals + 1)..]);
                span = span[(newline + 1)..];
            }
            else
            {
                var name = Encoding.ASCII.GetString(head);
                var length = (int)BinaryPrimitives.ReadUInt64LittleEndian(span.Slice(newline + 1, 8));
                var value = span.Slice(newline + 9, length);
                Assert.Equal((byte)'\n', span[newline + 9 + length]);
                fields[name] = Encoding.UTF8.GetString(value);
                span = span[(newline + 10 + length)..];
            }
        }

        return fields;
    }
}
