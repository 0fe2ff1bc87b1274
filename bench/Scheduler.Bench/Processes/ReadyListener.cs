using System.Diagnostics;
using System.Net.Sockets;
using System.Text;

namespace Dtask.Bench.Processes;

/// <summary>
/// A systemd-style notify socket (a unix datagram socket) for one process: hand <see cref="Path"/> to it as
/// <c>NOTIFY_SOCKET</c>, and <see cref="WaitReadyAsync"/> returns when <c>READY=1</c> arrives.
/// </summary>
internal sealed class ReadyListener : IDisposable
{
    private readonly Socket socket = new(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
    private readonly DirectoryInfo folder = Directory.CreateTempSubdirectory("dtask-bench-notify-");

    public ReadyListener()
    {
        Path = System.IO.Path.Combine(folder.FullName, "notify.sock");
        socket.Bind(new UnixDomainSocketEndPoint(Path));
    }

    /// <summary>The socket's path.</summary>
    public string Path { get; }

    /// <summary>Waits for <c>READY=1</c>; returns the <see cref="Stopwatch"/> timestamp of its arrival, or null after <paramref name="timeout"/>.</summary>
    public async Task<long?> WaitReadyAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(timeout);
        var buffer = new byte[4096];
        try
        {
            for (var datagram = 0; datagram < 1000; datagram++)
            {
                var read = await socket.ReceiveAsync(buffer, SocketFlags.None, limit.Token);
                var text = Encoding.UTF8.GetString(buffer, 0, read);
                if (text.Split('\n').Contains("READY=1", StringComparer.Ordinal))
                {
                    return Stopwatch.GetTimestamp();
                }
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // Timed out.
        }

        return null;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        socket.Dispose();
        try
        {
            folder.Delete(recursive: true);
        }
        catch (IOException)
        {
            // Harmless.
        }
    }
}
