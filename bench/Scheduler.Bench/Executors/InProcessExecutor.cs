using Dtask.Consul.Configuration;
using Dtask.Executor.Daemon;
using Dtask.Executor.Notifications;
using Microsoft.Extensions.Hosting;
using Serilog;
using Serilog.Core;
using Serilog.Events;

namespace Dtask.Bench.Executors;

/// <summary>
/// The executor daemon's host (<see cref="ExecutorHost.Build"/>) started inside this process: the same services,
/// sessions, watches and claims as <c>dtask executor</c>, so that 10 or 30 executors fit on a small machine.
/// </summary>
internal sealed class InProcessExecutor : IRunningExecutor
{
    private readonly IHost host;
    private readonly Logger logger;

    private InProcessExecutor(string node, IHost host, Logger logger)
    {
        Node = node;
        this.host = host;
        this.logger = logger;
    }

    /// <inheritdoc />
    public string Node { get; }

    /// <inheritdoc />
    public int? ProcessId => null;

    /// <summary>Builds and starts an executor; returns once it has registered and loaded its tasks.</summary>
    /// <param name="node">The node name.</param>
    /// <param name="prefix">The KV prefix.</param>
    /// <param name="consul">Where the agent is.</param>
    /// <param name="log">Where its fire delays and problems go.</param>
    /// <param name="cancellationToken">Stops the start.</param>
    /// <param name="maxConsulRequests">The executor's <c>--max-consul-requests</c> (its connections to the agent are about as many).</param>
    public static async Task<InProcessExecutor> StartAsync(string node, string prefix, ConsulClientOptions consul, ExecutorLog log, CancellationToken cancellationToken,
        int maxConsulRequests = ExecutorOptions.DefaultMaxConsulRequests)
    {
        var logger = new LoggerConfiguration().MinimumLevel.Information().WriteTo.Sink(new LogSink(node, log)).CreateLogger();
        var options = new ExecutorOptions { Node = node, Prefix = prefix, ShutdownGrace = TimeSpan.FromSeconds(5), MaxConsulRequests = maxConsulRequests };
        var notifications = NotificationOptions.FromEnvironment(new EnvironmentSettings(new Dictionary<string, string?>()));
        var host = ExecutorHost.Build(options, consul, notifications, logger);
        try
        {
            await host.StartAsync(cancellationToken);
        }
        catch
        {
            host.Dispose();
            await logger.DisposeAsync();
            throw;
        }

        return new InProcessExecutor(node, host, logger);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        using (var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20)))
        {
            try
            {
                await host.StopAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                // Stopped as far as it could.
            }
        }

        host.Dispose();
        await logger.DisposeAsync();
    }

    /// <summary>Hands the executor's fire delays and problems to an <see cref="ExecutorLog"/>.</summary>
    private sealed class LogSink(string node, ExecutorLog log) : ILogEventSink
    {
        public void Emit(LogEvent logEvent)
        {
            if (logEvent.Properties.TryGetValue("FireDelayMs", out var value) && value is ScalarValue { Value: double delay })
            {
                log.FireDelay(delay);
            }

            if (logEvent.Level >= LogEventLevel.Warning)
            {
                log.Problem(node, logEvent.RenderMessage(System.Globalization.CultureInfo.InvariantCulture));
            }
        }
    }
}
