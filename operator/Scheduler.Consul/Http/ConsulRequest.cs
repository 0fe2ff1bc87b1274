using System.Net;
using System.Text;

namespace Dtask.Consul.Http;

/// <summary>One request to the agent, described before it is sent.</summary>
/// <param name="Method">GET, PUT or DELETE.</param>
/// <param name="Path">The path below the address, e.g. <c>/v1/kv/dtask/x</c>, already escaped.</param>
/// <param name="Operation">What is being done, for messages: "read key", "create session".</param>
/// <param name="Subject">What it is done to, for messages: the key, the session id, the endpoint.</param>
internal sealed record ConsulRequest(HttpMethod Method, string Path, string Operation, string Subject)
{
    public IReadOnlyList<KeyValuePair<string, string?>> Query { get; init; } = [];

    public ReadOnlyMemory<byte>? Body { get; init; }

    public QueryOptions? Read { get; init; }

    /// <summary>Statuses other than 2xx that the caller decodes itself (404 for a missing key, 409 for a txn).</summary>
    public IReadOnlyCollection<HttpStatusCode> Accepted { get; init; } = [];

    /// <summary>A PUT that changes nothing (a transaction of reads only): counted and retried as a read.</summary>
    public bool ReadsOnly { get; init; }

    public bool IsWrite => !ReadsOnly && (Method == HttpMethod.Put || Method == HttpMethod.Delete);

    public string PathAndQuery()
    {
        var query = new List<KeyValuePair<string, string?>>(Query);
        if (Read is { } read)
        {
            switch (read.Consistency)
            {
                case ConsistencyMode.Consistent:
                    query.Add(new("consistent", null));
                    break;
                case ConsistencyMode.Stale:
                    query.Add(new("stale", null));
                    break;
                case ConsistencyMode.Default:
                    break;
            }
            if (read.WaitIndex > 0)
            {
                query.Add(new("index", read.WaitIndex.ToString(System.Globalization.CultureInfo.InvariantCulture)));
                if (read.WaitTime is { } wait)
                {
                    query.Add(new("wait", FormatDuration(wait)));
                }
            }
        }
        if (query.Count == 0)
        {
            return Path;
        }
        var text = new StringBuilder(Path).Append('?');
        for (var i = 0; i < query.Count; i++)
        {
            if (i > 0)
            {
                text.Append('&');
            }
            text.Append(Uri.EscapeDataString(query[i].Key));
            if (query[i].Value is { } value)
            {
                text.Append('=').Append(Uri.EscapeDataString(value));
            }
        }
        return text.ToString();
    }

    /// <summary>A Go duration string in whole milliseconds, e.g. <c>1500ms</c>.</summary>
    public static string FormatDuration(TimeSpan duration) =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{(long)Math.Ceiling(duration.TotalMilliseconds)}ms");

    /// <summary>Escapes a KV key for a URL path, keeping its slashes.</summary>
    public static string EscapeKey(string key) => string.Join('/', key.Split('/').Select(Uri.EscapeDataString));
}

/// <summary>The raw answer: status, body bytes and metadata.</summary>
internal sealed record ConsulRawResponse(HttpStatusCode Status, byte[] Body, ConsulResponseMeta Meta)
{
    /// <summary>The request answered, for messages: <c>GET /v1/kv/…</c>.</summary>
    public string Endpoint { get; init; } = "";

    public ConsulResponse<T> With<T>(T value) => new(value, Meta);

    /// <summary>
    /// The body as JSON of <typeparamref name="T"/>. A body that is not (truncated, a proxy's page, the wrong shape, or
    /// JSON null where <paramref name="required"/>) is a <see cref="Errors.ConsulUnreachableException"/>: no usable
    /// answer came, so the outcome of a write is unknown, as when the connection drops.
    /// </summary>
    public T Decode<T>(System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> typeInfo, bool required = true)
    {
        T? value;
        try
        {
            value = System.Text.Json.JsonSerializer.Deserialize(Body, typeInfo);
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or NotSupportedException or InvalidOperationException or ArgumentException or FormatException)
        {
            throw Malformed(e.Message, e);
        }

        return value is null && required ? throw Malformed("JSON null where an answer was expected", null) : value!;
    }

    /// <summary>The error for an answer that is not what Consul sends.</summary>
    public Errors.ConsulUnreachableException Malformed(string reason, Exception? inner)
    {
        var text = reason.ReplaceLineEndings(" ");
        return new Errors.ConsulUnreachableException(Endpoint,
            $"{Endpoint}: the answer ({(int)Status}, {Body.Length} bytes) is not what Consul sends — truncated, or from something between this client and the agent: {(text.Length > 200 ? text[..200] + "…" : text)}",
            inner);
    }
}
