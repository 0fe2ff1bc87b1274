using System.Net.Sockets;
using Serilog.Core;
using Serilog.Debugging;
using Serilog.Events;

namespace Dtask.Executor.Logging;

/// <summary>
/// A Serilog sink that writes native journal entries to journald's datagram socket, with <c>MESSAGE</c>,
/// <c>PRIORITY</c>, <c>SYSLOG_IDENTIFIER</c>, the run's <c>DTASK_*</c> fields (see <see cref="LogProperties"/>),
/// <c>EXCEPTION</c> when there is one, and other scalar properties as upper-case fields (<c>ExitCode</c> →
/// <c>EXIT_CODE</c>). A failed send is reported to Serilog's SelfLog and never thrown.
/// </summary>
public sealed class JournalSink : ILogEventSink, IDisposable
{
    /// <summary>Where journald listens for native entries.</summary>
    public const string DefaultSocketPath = "/run/systemd/journal/socket";

    /// <summary>The <c>SYSLOG_IDENTIFIER</c> of the executor's entries.</summary>
    public const string DefaultSyslogIdentifier = "dtask";

    private const int RetryMessageCap = 4 * 1024;

    private readonly Socket socket;
    private readonly UnixDomainSocketEndPoint endPoint;
    private readonly JournalEntryEncoder encoder;
    private readonly Lock sendLock = new();

    /// <summary>Creates a sink for the given socket.</summary>
    /// <param name="socketPath">journald's native socket.</param>
    /// <param name="syslogIdentifier">The <c>SYSLOG_IDENTIFIER</c> field.</param>
    public JournalSink(string socketPath = DefaultSocketPath, string syslogIdentifier = DefaultSyslogIdentifier)
    {
        ArgumentException.ThrowIfNullOrEmpty(socketPath);
        encoder = new JournalEntryEncoder(syslogIdentifier);
        endPoint = new UnixDomainSocketEndPoint(socketPath);
        socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified)
        {
            // journald's own client raises the buffer the same way; the kernel caps it at net.core.wmem_max.
            SendBufferSize = 8 * 1024 * 1024,
            // A journald that does not drain its queue must not stall the executor for long.
            SendTimeout = 2000,
        };
    }

    /// <inheritdoc />
    public void Emit(LogEvent logEvent)
    {
        ArgumentNullException.ThrowIfNull(logEvent);
        try
        {
            Send(encoder.Encode(logEvent));
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.MessageSize or SocketError.NoBufferSpaceAvailable)
        {
            // The kernel refused the datagram as too large for its buffer: retry once, small.
            TrySend(() => encoder.Encode(logEvent, RetryMessageCap, includeCustomFields: false));
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            SelfLog.WriteLine("dtask journal sink: cannot write to journald: {0}", e.Message);
        }
    }

    /// <inheritdoc />
    public void Dispose() => socket.Dispose();

    private void TrySend(Func<byte[]> encode)
    {
        try
        {
            Send(encode());
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            SelfLog.WriteLine("dtask journal sink: cannot write to journald: {0}", e.Message);
        }
    }

    private void Send(byte[] datagram)
    {
        lock (sendLock)
        {
            socket.SendTo(datagram, SocketFlags.None, endPoint);
        }
    }
}

/// <summary>Probes journald's native socket.</summary>
public static class JournalSocket
{
    /// <summary>
    /// Whether the socket exists and something receives on it. A socket file left behind by a journald that is
    /// gone refuses the connection, and counts as absent.
    /// </summary>
    /// <param name="socketPath">The socket's path.</param>
    /// <returns>Whether journald is there.</returns>
    public static bool Accepts(string socketPath = JournalSink.DefaultSocketPath)
    {
        if (!File.Exists(socketPath))
        {
            return false;
        }

        try
        {
            using var probe = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
            probe.Connect(new UnixDomainSocketEndPoint(socketPath));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
