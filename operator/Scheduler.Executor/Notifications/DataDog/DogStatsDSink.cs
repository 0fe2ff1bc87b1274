using System.Net;
using System.Net.Sockets;
using System.Text;
using Serilog;

namespace Dtask.Executor.Notifications.DataDog;

/// <summary>
/// Sends each point as one DogStatsD datagram over UDP. UDP does not wait for the agent, so this is done on the
/// caller's thread; errors (no agent, unreachable host) are swallowed and logged at Debug. A host name is
/// resolved when first needed and again at most every 30 s while it fails.
/// </summary>
public sealed class DogStatsDSink : IMetricSink
{
    private static readonly TimeSpan ResolveRetry = TimeSpan.FromSeconds(30);

    private readonly string host;
    private readonly int port;
    private readonly ILogger logger;
    private readonly TimeProvider timeProvider;
    private readonly Lock gate = new();
    private Socket? socket;
    private IPEndPoint? endPoint;
    private DateTimeOffset nextResolve = DateTimeOffset.MinValue;
    private bool disposed;

    /// <summary>Creates the sink.</summary>
    /// <param name="host">The agent's host name or address.</param>
    /// <param name="port">The agent's UDP port.</param>
    /// <param name="logger">For send problems.</param>
    /// <param name="timeProvider">For the resolution retry interval.</param>
    public DogStatsDSink(string host, int port, ILogger logger, TimeProvider timeProvider)
    {
        ArgumentException.ThrowIfNullOrEmpty(host);
        ArgumentNullException.ThrowIfNull(logger);
        ArgumentNullException.ThrowIfNull(timeProvider);
        this.host = host;
        this.port = port;
        this.logger = logger;
        this.timeProvider = timeProvider;
    }

    /// <inheritdoc />
    public void Submit(IReadOnlyList<MetricPoint> points)
    {
        ArgumentNullException.ThrowIfNull(points);
        lock (gate)
        {
            if (disposed || !EnsureEndPoint())
            {
                return;
            }

            foreach (var point in points)
            {
                try
                {
                    socket!.SendTo(Encoding.UTF8.GetBytes(DogStatsDFormat.Format(point)), SocketFlags.None, endPoint!);
                }
                catch (SocketException e)
                {
                    logger.Debug("dogstatsd: cannot send {Metric:l}: {Error:l}", point.Name, e.SocketErrorCode.ToString());
                }
            }
        }
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        lock (gate)
        {
            disposed = true;
            socket?.Dispose();
        }

        return ValueTask.CompletedTask;
    }

    private bool EnsureEndPoint()
    {
        if (endPoint is not null)
        {
            return true;
        }

        var now = timeProvider.GetUtcNow();
        if (now < nextResolve)
        {
            return false;
        }

        try
        {
            var address = IPAddress.TryParse(host, out var parsed)
                ? parsed
                : Dns.GetHostAddresses(host).OrderBy(a => a.AddressFamily == AddressFamily.InterNetwork ? 0 : 1).First();
            endPoint = new IPEndPoint(address, port);
            socket = new Socket(address.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            return true;
        }
        catch (Exception e) when (e is SocketException or InvalidOperationException)
        {
            nextResolve = now + ResolveRetry;
            logger.Warning("dogstatsd: cannot resolve agent host {Host:l}: {Error:l}", host, e.Message);
            return false;
        }
    }
}
