using System.Globalization;
using System.Net;
using Dtask.Core.Metrics;
using Microsoft.Extensions.Hosting;
using Prometheus;

namespace Dtask.Executor.Metrics;

/// <summary>Where <c>/metrics</c> listens: <c>HOST:PORT</c>, <c>:PORT</c> (every address), or <c>[V6]:PORT</c>.</summary>
/// <param name="Host">An address, a host name, or <c>+</c> for every address.</param>
/// <param name="Port">The TCP port (0: any free one).</param>
public sealed record MetricsEndpoint(string Host, int Port)
{
    /// <summary>Parses <c>HOST:PORT</c>; <c>0.0.0.0</c>, <c>*</c> and an empty host mean every address.</summary>
    /// <param name="text">The text.</param>
    /// <returns>The endpoint.</returns>
    /// <exception cref="FormatException">Not HOST:PORT with a port from 0 to 65535.</exception>
    public static MetricsEndpoint Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var colon = text.LastIndexOf(':');
        if (colon < 0 || !int.TryParse(text.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port > 65535)
        {
            throw new FormatException($"--metrics-listen '{text}' is not HOST:PORT (e.g. 0.0.0.0:9464 or 127.0.0.1:9464)");
        }

        var host = text[..colon].Trim('[', ']');
        return new MetricsEndpoint(host is "" or "0.0.0.0" or "*" or "::" ? "+" : host, port);
    }

    /// <inheritdoc />
    public override string ToString() => $"{(Host == "+" ? "0.0.0.0" : Host.Contains(':', StringComparison.Ordinal) ? "[" + Host + "]" : Host)}:{Port}";
}

/// <summary>
/// Serves the executor's instruments (<see cref="ExecutorInstruments"/>) at <c>http://ENDPOINT/metrics</c> in the
/// Prometheus text format, with prometheus-net's <see cref="MetricServer"/>, from start to stop of the host.
/// </summary>
public sealed class MetricsService(MetricsEndpoint endpoint, ExecutorInstruments instruments, Serilog.ILogger logger) : IHostedService, IDisposable
{
    private readonly PrometheusMeterExport export = new(instruments.Meter, ExecutorInstruments.PrometheusLabel);
    private MetricServer? server;

    /// <inheritdoc />
    public Task StartAsync(CancellationToken cancellationToken)
    {
        server = new MetricServer(endpoint.Host, endpoint.Port, "metrics/", export.Registry);
        try
        {
            server.Start();
        }
        catch (HttpListenerException e)
        {
            throw new InvalidOperationException($"--metrics-listen {endpoint}: cannot listen: {e.Message}", e);
        }

        logger.Information("metrics at http://{Endpoint:l}/metrics", endpoint);
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (server is not null)
        {
            await server.StopAsync().ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        server?.Dispose();
        export.Dispose();
    }
}
