using System.Globalization;

namespace Dtask.Bench.Processes;

/// <summary>Counts established TCP connections to a local port, from <c>/proc/net/tcp</c> (IPv4 loopback).</summary>
internal static class TcpConnections
{
    private const string Established = "01";

    /// <summary>Connections whose local end is <paramref name="port"/> (the server's side of each client connection).</summary>
    public static int To(int port)
    {
        var hexPort = ":" + port.ToString("X4", CultureInfo.InvariantCulture);
        try
        {
            return File.ReadLines("/proc/net/tcp").Skip(1)
                .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                .Count(f => f.Length > 3 && f[1].EndsWith(hexPort, StringComparison.Ordinal) && f[3] == Established);
        }
        catch (IOException)
        {
            return 0;
        }
    }
}
