using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Dtask.Operator.Health;

/// <summary>
/// The probes' endpoints, on a plain HTTP/1.1 listener: <c>GET /healthz</c> answers 200 while the process runs,
/// <c>GET /readyz</c> 200 once <see cref="OperatorReadiness.IsReady"/> and 503 before, <c>GET /metrics</c> the operator's
/// metrics in the Prometheus text format (when given). One short request per
/// connection, answered and closed; nothing else is served.
/// </summary>
public sealed class HealthServer : BackgroundService
{
    private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(5);
    private readonly HealthOptions options;
    private readonly OperatorReadiness readiness;
    private readonly ILogger logger;
    private readonly Core.Metrics.PrometheusMeterExport? metrics;
    private readonly TaskCompletionSource<int> bound = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Creates the server; it listens once the host starts it.</summary>
    /// <param name="options">Where to listen.</param>
    /// <param name="readiness">What <c>/readyz</c> says.</param>
    /// <param name="logger">For the listening line.</param>
    /// <param name="metrics">Served at <c>GET /metrics</c> (Prometheus text format); 404 there when null.</param>
    public HealthServer(HealthOptions options, OperatorReadiness readiness, ILogger<HealthServer>? logger = null, Core.Metrics.PrometheusMeterExport? metrics = null)
    {
        this.metrics = metrics;
        this.options = options ?? throw new ArgumentNullException(nameof(options));
        this.readiness = readiness ?? throw new ArgumentNullException(nameof(readiness));
        this.logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    /// <summary>Completes with the bound port once listening (useful with port 0).</summary>
    public Task<int> Port => bound.Task;

    /// <inheritdoc />
    public override Task StartAsync(CancellationToken cancellationToken)
    {
        var listener = new TcpListener(IPAddress.Parse(options.Address), options.Port);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        OperatorLog.HealthListening(logger, options.Address, port);
        Listener = listener;
        bound.TrySetResult(port);
        return base.StartAsync(cancellationToken);
    }

    private TcpListener? Listener { get; set; }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var listener = Listener!;
        using var stop = stoppingToken.Register(listener.Stop);
        var open = new List<Task>();
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                Socket socket;
                try
                {
                    socket = await listener.AcceptSocketAsync(stoppingToken).ConfigureAwait(false);
                }
                catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
                {
                    return;
                }

                open.RemoveAll(t => t.IsCompleted);
                open.Add(AnswerAsync(socket, stoppingToken));
            }
        }
        finally
        {
            listener.Stop();
            await Task.WhenAll(open).ConfigureAwait(false);
        }
    }

    private async Task AnswerAsync(Socket socket, CancellationToken stoppingToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        timeout.CancelAfter(RequestTimeout);
        await using var stream = new NetworkStream(socket, ownsSocket: true);
        try
        {
            var head = await ReadHeadAsync(stream, timeout.Token).ConfigureAwait(false);
            var requestLine = head.Split("\r\n", 2)[0].Split(' ');
            var (method, path) = requestLine.Length >= 2 ? (requestLine[0], requestLine[1].Split('?')[0]) : ("", "");
            var contentType = "text/plain; charset=utf-8";
            var (code, text) = (method, path) switch
            {
                ("GET" or "HEAD", "/metrics") when metrics is not null => (HttpStatusCode.OK, await metrics.ScrapeAsync().ConfigureAwait(false)),
                ("GET" or "HEAD", "/healthz") => (HttpStatusCode.OK, "ok"),
                ("GET" or "HEAD", "/readyz") => readiness.IsReady ? (HttpStatusCode.OK, "ok") : (HttpStatusCode.ServiceUnavailable, readiness.Describe()),
                ("GET" or "HEAD", _) => (HttpStatusCode.NotFound, "not found"),
                _ => (HttpStatusCode.MethodNotAllowed, "method not allowed"),
            };
            if (path == "/metrics" && code == HttpStatusCode.OK)
            {
                contentType = Core.Metrics.PrometheusMeterExport.ContentType;
            }

            var body = Encoding.UTF8.GetBytes(text.EndsWith('\n') ? text : text + "\n");
            var response = Encoding.ASCII.GetBytes(
                $"HTTP/1.1 {(int)code} {Reason(code)}\r\nContent-Type: {contentType}\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n");
            await stream.WriteAsync(response, timeout.Token).ConfigureAwait(false);
            if (method != "HEAD")
            {
                await stream.WriteAsync(body, timeout.Token).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or InvalidDataException)
        {
            // A probe that went away or sent nothing usable.
        }
    }

    /// <summary>Reads up to the blank line that ends the request head (at most 8 KiB).</summary>
    private static async Task<string> ReadHeadAsync(NetworkStream stream, CancellationToken cancellationToken)
    {
        var buffer = new byte[8192];
        var length = 0;
        while (length < buffer.Length)
        {
            var read = await stream.ReadAsync(buffer.AsMemory(length), cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                break;
            }

            length += read;
            if (buffer.AsSpan(0, length).IndexOf("\r\n\r\n"u8) >= 0)
            {
                break;
            }
        }

        return length == 0 ? throw new InvalidDataException("empty request") : Encoding.ASCII.GetString(buffer, 0, length);
    }

    private static string Reason(HttpStatusCode code) => code switch
    {
        HttpStatusCode.OK => "OK",
        HttpStatusCode.ServiceUnavailable => "Service Unavailable",
        HttpStatusCode.NotFound => "Not Found",
        _ => "Method Not Allowed",
    };

    /// <inheritdoc />
    public override void Dispose()
    {
        Listener?.Dispose();
        base.Dispose();
    }
}
