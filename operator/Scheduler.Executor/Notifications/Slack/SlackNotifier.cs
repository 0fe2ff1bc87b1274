using System.Net.Http.Headers;
using System.Text;
using Serilog;

namespace Dtask.Executor.Notifications.Slack;

/// <summary>
/// Sends Slack incoming-webhook messages for the events a task asked for (its <c>notify.slack.on</c>, else the
/// configured default set), from a background <see cref="HttpOutbox"/>. Never blocks or throws into the caller.
/// </summary>
public sealed class SlackNotifier : IRunNotifier
{
    private readonly SlackOptions options;
    private readonly Uri webhook;
    private readonly HttpOutbox outbox;

    /// <summary>Creates the notifier and its background sender.</summary>
    /// <param name="options">The settings; <see cref="SlackOptions.Webhook"/> must be set.</param>
    /// <param name="client">The HTTP client; not owned.</param>
    /// <param name="logger">For delivery problems (never the webhook URL).</param>
    /// <param name="timeProvider">For timeouts and backoff.</param>
    public SlackNotifier(SlackOptions options, HttpClient client, ILogger logger, TimeProvider timeProvider)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(logger);
        this.options = options;
        webhook = options.WebhookUri();
        outbox = new HttpOutbox("slack", client, options.Delivery, logger, timeProvider);
    }

    /// <summary>Messages dropped because the queue was full.</summary>
    public long Dropped => outbox.Dropped;

    /// <summary>Messages delivered.</summary>
    public long Delivered => outbox.Delivered;

    /// <summary>Messages given up on.</summary>
    public long Failed => outbox.Failed;

    /// <inheritdoc />
    public void RunStarted(RunContext run)
    {
        ArgumentNullException.ThrowIfNull(run);
        Send(run.Notify, NotificationEvent.Start, "start", () => SlackMessageComposer.Started(run));
    }

    /// <inheritdoc />
    public void RunFinished(RunContext run, RunOutcome outcome)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(outcome);
        var notificationEvent = outcome.Result == RunResult.Succeeded ? NotificationEvent.Success : NotificationEvent.Failure;
        Send(run.Notify, notificationEvent, NotificationEventNames.Name(notificationEvent), () => SlackMessageComposer.Finished(run, outcome));
    }

    /// <inheritdoc />
    public void SlotMissed(MissedSlot slot)
    {
        ArgumentNullException.ThrowIfNull(slot);
        Send(slot.Notify, NotificationEvent.Missed, "missed", () => SlackMessageComposer.Missed(slot));
    }

    /// <inheritdoc />
    public void LockLost(RunContext run, string reason)
    {
        ArgumentNullException.ThrowIfNull(run);
        Send(run.Notify, NotificationEvent.Lost, "lost", () => SlackMessageComposer.LockLost(run, reason));
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => outbox.DisposeAsync();

    private void Send(TaskNotification? notify, NotificationEvent notificationEvent, string what, Func<SlackMessage> compose)
    {
        var wanted = notify?.SlackOn ?? options.On;
        if (!wanted.Contains(notificationEvent))
        {
            return;
        }

        var body = compose().ToJson();
        outbox.Enqueue("slack " + what + " message", () => new HttpRequestMessage(HttpMethod.Post, webhook)
        {
            Content = new StringContent(body, Encoding.UTF8, new MediaTypeHeaderValue("application/json")),
        });
    }
}
