using System.Net.Http.Headers;
using System.Text.Json;
using Serilog;

namespace Dtask.Executor.Notifications.DataDog;

/// <summary>
/// Posts points to DataDog's HTTP series API (<c>POST {base}/api/v1/series</c>) from a background
/// <see cref="HttpOutbox"/>, the API key in the <c>DD-API-KEY</c> header (never in the URL or the log).
/// The v1 API knows counts and gauges: distributions and timings are sent as gauges.
/// </summary>
public sealed class SeriesApiSink : IMetricSink
{
    private readonly Uri endpoint;
    private readonly SecretText apiKey;
    private readonly TimeProvider timeProvider;
    private readonly HttpOutbox outbox;

    /// <summary>Creates the sink and its background sender.</summary>
    /// <param name="options">The settings; <see cref="DataDogOptions.ApiKey"/> must be set.</param>
    /// <param name="client">The HTTP client; not owned.</param>
    /// <param name="logger">For delivery problems.</param>
    /// <param name="timeProvider">For point timestamps, timeouts and backoff.</param>
    public SeriesApiSink(DataDogOptions options, HttpClient client, ILogger logger, TimeProvider timeProvider)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(timeProvider);
        apiKey = options.ApiKey ?? throw new ArgumentException("the series API needs an API key", nameof(options));
        endpoint = new Uri(options.ApiBaseUrl, "api/v1/series");
        this.timeProvider = timeProvider;
        outbox = new HttpOutbox("datadog", client, options.Delivery, logger, timeProvider);
    }

    /// <summary>Posts given up on or dropped.</summary>
    public long Lost => outbox.Failed + outbox.Dropped;

    /// <inheritdoc />
    public void Submit(IReadOnlyList<MetricPoint> points)
    {
        ArgumentNullException.ThrowIfNull(points);
        if (points.Count == 0)
        {
            return;
        }

        var body = Serialize(points, timeProvider.GetUtcNow().ToUnixTimeSeconds());
        outbox.Enqueue("datadog series", () =>
        {
            var request = new HttpRequestMessage(HttpMethod.Post, endpoint)
            {
                Content = new ByteArrayContent(body) { Headers = { ContentType = new MediaTypeHeaderValue("application/json") } },
            };
            request.Headers.Add("DD-API-KEY", apiKey.Reveal());
            return request;
        });
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => outbox.DisposeAsync();

    /// <summary>The request body: <c>{"series":[{"metric":..,"points":[[ts,value]],"type":..,"tags":[..],"host":..}]}</c>.</summary>
    internal static byte[] Serialize(IReadOnlyList<MetricPoint> points, long unixSeconds)
    {
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream))
        {
            json.WriteStartObject();
            json.WriteStartArray("series");
            foreach (var point in points)
            {
                json.WriteStartObject();
                json.WriteString("metric", point.Name);
                json.WriteStartArray("points");
                json.WriteStartArray();
                json.WriteNumberValue(unixSeconds);
                json.WriteNumberValue(Math.Round(point.Value, 3));
                json.WriteEndArray();
                json.WriteEndArray();
                json.WriteString("type", point.Kind == MetricKind.Count ? "count" : "gauge");
                json.WriteStartArray("tags");
                foreach (var tag in point.Tags)
                {
                    json.WriteStringValue(tag);
                }

                json.WriteEndArray();
                json.WriteString("host", point.Host);
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        return stream.ToArray();
    }

    /// <summary>The endpoint, for diagnostics (carries no secret).</summary>
    /// <returns>The URL.</returns>
    public override string ToString() => endpoint.ToString();
}
