namespace Dtask.Executor.Notifications.Slack;

/// <summary>Slack incoming-webhook settings.</summary>
/// <param name="Webhook">The webhook URL (a secret: its path is the credential); null disables Slack.</param>
/// <param name="On">The events a task gets messages for when its manifest does not say (<c>notify.slack.on</c>).</param>
/// <param name="Delivery">Queue, retry and timeout settings.</param>
public sealed record SlackOptions(SecretText? Webhook, IReadOnlySet<NotificationEvent> On, HttpOutboxOptions Delivery)
{
    /// <summary>The webhook URL variable (the name the original script used).</summary>
    public const string WebhookVariable = "SLACK_WEBHOOK";

    /// <summary>The variable naming the default event list, e.g. <c>failure,missed,lost</c>.</summary>
    public const string OnVariable = "DTASK_SLACK_ON";

    /// <summary>Whether a webhook is configured.</summary>
    public bool Enabled => Webhook is not null;

    /// <summary>
    /// Reads <c>SLACK_WEBHOOK</c> (or the file named by <c>SLACK_WEBHOOK_FILE</c>) and <c>DTASK_SLACK_ON</c>
    /// (default: failure, missed, lost).
    /// </summary>
    /// <param name="settings">The environment.</param>
    /// <returns>The options.</returns>
    /// <exception cref="FormatException">The webhook is not an absolute http(s) URL, or an event name is unknown.</exception>
    public static SlackOptions FromEnvironment(EnvironmentSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var webhook = settings.Secret(WebhookVariable);
        if (webhook is not null && !IsHttpUrl(webhook.Reveal()))
        {
            // The value itself is not repeated: a malformed URL may still hold the token.
            throw new FormatException($"{WebhookVariable} is not an absolute http(s) URL");
        }

        var on = settings.Get(OnVariable) is { } list ? NotificationEventNames.ParseList(list) : NotificationEventNames.Default;
        return new SlackOptions(webhook, on, HttpOutboxOptions.Default);
    }

    /// <summary>The webhook as a URI.</summary>
    /// <returns>The URI.</returns>
    /// <exception cref="InvalidOperationException">Slack is not configured.</exception>
    public Uri WebhookUri() =>
        Webhook is null ? throw new InvalidOperationException("no Slack webhook configured") : new Uri(Webhook.Reveal(), UriKind.Absolute);

    private static bool IsHttpUrl(string text) =>
        Uri.TryCreate(text, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttps || uri.Scheme == Uri.UriSchemeHttp);
}
