using System.Globalization;

namespace Dtask.Executor.Notifications.DataDog;

/// <summary>How metrics reach DataDog.</summary>
public enum DataDogMode
{
    /// <summary>No metrics.</summary>
    Off,

    /// <summary>DogStatsD datagrams to an agent over UDP.</summary>
    DogStatsD,

    /// <summary>The HTTP series API with an API key, without an agent.</summary>
    SeriesApi,
}

/// <summary>DataDog settings.</summary>
/// <param name="Mode">DogStatsD, the series API, or off.</param>
/// <param name="AgentHost">The DogStatsD agent's host.</param>
/// <param name="AgentPort">The DogStatsD agent's UDP port.</param>
/// <param name="ApiKey">The API key for the series API (a secret).</param>
/// <param name="ApiBaseUrl">The API's base URL, <c>https://api.datadoghq.com</c> by default.</param>
/// <param name="ConstantTags">Tags on every point: <c>env:</c>, <c>service:</c>, <c>version:</c> and <c>DD_TAGS</c>.</param>
/// <param name="Delivery">Queue, retry and timeout settings of the series API.</param>
public sealed record DataDogOptions(
    DataDogMode Mode,
    string AgentHost,
    int AgentPort,
    SecretText? ApiKey,
    Uri ApiBaseUrl,
    IReadOnlyList<string> ConstantTags,
    HttpOutboxOptions Delivery)
{
    /// <summary>The agent's default host.</summary>
    public const string DefaultAgentHost = "127.0.0.1";

    /// <summary>The agent's default DogStatsD port.</summary>
    public const int DefaultAgentPort = 8125;

    /// <summary>The default DataDog site.</summary>
    public const string DefaultSite = "datadoghq.com";

    /// <summary>Overrides the series API's base URL (a proxy, another intake, a test listener).</summary>
    public const string ApiUrlVariable = "DTASK_DATADOG_API_URL";

    /// <summary>Forces a mode: <c>auto</c> (default), <c>statsd</c>, <c>api</c>, <c>off</c>.</summary>
    public const string ModeVariable = "DTASK_DATADOG";

    /// <summary>
    /// Reads the standard variables: <c>DD_DOGSTATSD_URL</c> (<c>udp://host:port</c>), <c>DD_AGENT_HOST</c>,
    /// <c>DD_DOGSTATSD_PORT</c>, <c>DD_API_KEY</c> / <c>DATADOG_API_KEY</c> (or their <c>_FILE</c> forms),
    /// <c>DD_SITE</c>, <c>DD_ENV</c>, <c>DD_SERVICE</c>, <c>DD_VERSION</c>, <c>DD_TAGS</c>; and
    /// <c>DTASK_DATADOG</c>, <c>DTASK_DATADOG_API_URL</c>. In auto mode: DogStatsD when an agent is named, else the
    /// series API when an API key is given, else DogStatsD to 127.0.0.1:8125.
    /// </summary>
    /// <param name="settings">The environment.</param>
    /// <returns>The options.</returns>
    /// <exception cref="FormatException">A value is malformed.</exception>
    public static DataDogOptions FromEnvironment(EnvironmentSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var host = DefaultAgentHost;
        var port = DefaultAgentPort;
        var agentNamed = false;
        if (settings.Get("DD_DOGSTATSD_URL") is { } statsdUrl)
        {
            if (!Uri.TryCreate(statsdUrl, UriKind.Absolute, out var uri) || uri.Scheme != "udp" || uri.Port <= 0)
            {
                throw new FormatException("DD_DOGSTATSD_URL must be udp://host:port");
            }

            (host, port, agentNamed) = (uri.Host, uri.Port, true);
        }
        else
        {
            if (settings.Get("DD_AGENT_HOST") is { } agentHost)
            {
                if (Uri.CheckHostName(agentHost) == UriHostNameType.Unknown)
                {
                    throw new FormatException($"DD_AGENT_HOST '{agentHost}' is not a host name or IP address (the port goes in DD_DOGSTATSD_PORT)");
                }

                (host, agentNamed) = (agentHost, true);
            }

            if (settings.Get("DD_DOGSTATSD_PORT") is { } portText)
            {
                if (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out port) || port is < 1 or > 65535)
                {
                    throw new FormatException("DD_DOGSTATSD_PORT must be a port number");
                }

                agentNamed = true;
            }
        }

        var apiKey = settings.Secret("DD_API_KEY", "DATADOG_API_KEY");
        var baseUrl = settings.Get(ApiUrlVariable) ?? "https://api." + (settings.Get("DD_SITE") ?? DefaultSite);
        if (!Uri.TryCreate(baseUrl, UriKind.Absolute, out var apiBase) || (apiBase.Scheme != Uri.UriSchemeHttps && apiBase.Scheme != Uri.UriSchemeHttp))
        {
            throw new FormatException($"the DataDog API URL {baseUrl} is not an absolute http(s) URL");
        }

        var mode = (settings.Get(ModeVariable) ?? "auto").ToUpperInvariant() switch
        {
            "AUTO" => agentNamed || apiKey is null ? DataDogMode.DogStatsD : DataDogMode.SeriesApi,
            "STATSD" or "DOGSTATSD" => DataDogMode.DogStatsD,
            "API" => apiKey is null ? throw new FormatException("DTASK_DATADOG=api needs DD_API_KEY or DATADOG_API_KEY") : DataDogMode.SeriesApi,
            "OFF" => DataDogMode.Off,
            _ => throw new FormatException($"DTASK_DATADOG={settings.Get(ModeVariable)}: expected auto, statsd, api or off"),
        };

        var tags = new List<string>();
        AddTag(tags, "env", settings.Get("DD_ENV"));
        AddTag(tags, "service", settings.Get("DD_SERVICE"));
        AddTag(tags, "version", settings.Get("DD_VERSION"));
        if (settings.Get("DD_TAGS") is { } extra)
        {
            tags.AddRange(extra.Split([' ', ','], StringSplitOptions.RemoveEmptyEntries).Select(DogStatsDFormat.SanitizeTag));
        }

        return new DataDogOptions(mode, host, port, apiKey, apiBase, tags, HttpOutboxOptions.Default);
    }

    private static void AddTag(List<string> tags, string key, string? value)
    {
        if (value is not null)
        {
            tags.Add(DogStatsDFormat.Tag(key, value));
        }
    }
}
