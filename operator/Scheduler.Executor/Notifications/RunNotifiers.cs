using Dtask.Executor.Notifications.DataDog;
using Dtask.Executor.Notifications.Slack;
using Serilog;

namespace Dtask.Executor.Notifications;

/// <summary>
/// The executor's notifiers, built from options: Slack when a webhook is configured, DataDog unless it is off,
/// fanned out by a <see cref="CompositeRunNotifier"/>. Disposing it flushes the queues (within their deadlines)
/// and releases the HTTP client.
/// </summary>
public sealed class RunNotifiers : IRunNotifier
{
    private readonly CompositeRunNotifier composite;
    private readonly HttpClient? ownedClient;

    private RunNotifiers(CompositeRunNotifier composite, HttpClient? ownedClient)
    {
        this.composite = composite;
        this.ownedClient = ownedClient;
    }

    /// <summary>The notifiers events go to.</summary>
    public IReadOnlyList<IRunNotifier> Notifiers => composite.Notifiers;

    /// <summary>Builds the notifiers and logs which are on (never a URL or key).</summary>
    /// <param name="options">The settings.</param>
    /// <param name="logger">The executor's logger.</param>
    /// <param name="timeProvider">The clock; the system clock when null.</param>
    /// <param name="client">An HTTP client to use (not owned); a new one when null.</param>
    /// <param name="instruments">The executor's instruments: run events are recorded in them first, and DataDog reads them; DataDog's own when null.</param>
    /// <returns>The notifier to call.</returns>
    public static RunNotifiers Create(NotificationOptions options, ILogger logger, TimeProvider? timeProvider = null, HttpClient? client = null,
        Metrics.ExecutorInstruments? instruments = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(logger);
        timeProvider ??= TimeProvider.System;
        var ownedClient = client is null && (options.Slack.Enabled || options.DataDog.Mode == DataDogMode.SeriesApi)
            ? new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) })
            {
                // Each attempt has its own timeout (HttpOutboxOptions.RequestTimeout).
                Timeout = Timeout.InfiniteTimeSpan,
            }
            : null;
        var http = client ?? ownedClient;
        var notifiers = new List<IRunNotifier>();
        if (instruments is not null)
        {
            notifiers.Add(instruments.Notifier);
        }

        if (options.Slack.Enabled)
        {
            notifiers.Add(new SlackNotifier(options.Slack, http!, logger, timeProvider));
            logger.Information(
                "slack webhook configured; messages on {Events:l}",
                string.Join(',', options.Slack.On.Select(NotificationEventNames.Name)));
        }
        else
        {
            logger.Information("slack notifications off (no SLACK_WEBHOOK)");
        }

        switch (options.DataDog.Mode)
        {
            case DataDogMode.DogStatsD:
                notifiers.Add(new DataDogNotifier(
                    new DogStatsDSink(options.DataDog.AgentHost, options.DataDog.AgentPort, logger, timeProvider), options.DataDog.ConstantTags, instruments));
                logger.Information("datadog metrics to dogstatsd at {Host:l}:{Port}", options.DataDog.AgentHost, options.DataDog.AgentPort);
                break;
            case DataDogMode.SeriesApi:
                notifiers.Add(new DataDogNotifier(new SeriesApiSink(options.DataDog, http!, logger, timeProvider), options.DataDog.ConstantTags, instruments));
                logger.Information("datadog metrics to the series API at {Host:l} (api key configured)", options.DataDog.ApiBaseUrl.Host);
                break;
            default:
                logger.Information("datadog metrics off");
                break;
        }

        return new RunNotifiers(new CompositeRunNotifier(notifiers, logger), ownedClient);
    }

    /// <inheritdoc />
    public void RunStarted(RunContext run) => composite.RunStarted(run);

    /// <inheritdoc />
    public void RunFinished(RunContext run, RunOutcome outcome) => composite.RunFinished(run, outcome);

    /// <inheritdoc />
    public void SlotMissed(MissedSlot slot) => composite.SlotMissed(slot);

    /// <inheritdoc />
    public void LockLost(RunContext run, string reason) => composite.LockLost(run, reason);

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await composite.DisposeAsync().ConfigureAwait(false);
        ownedClient?.Dispose();
    }
}
