using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Dtask.Consul.Http;

namespace Dtask.Consul.Kv;

/// <summary>The KV store endpoints (<c>/v1/kv</c>).</summary>
public sealed class ConsulKv
{
    private readonly ConsulTransport transport;

    internal ConsulKv(ConsulTransport transport) => this.transport = transport;

    /// <summary>Reads one key; the value is null when the key does not exist (the index is still returned, to block on).</summary>
    public async Task<ConsulResponse<KvPair?>> GetAsync(string key, QueryOptions? query = null, CancellationToken cancellationToken = default)
    {
        var raw = await ReadAsync(key, "read key", [], query, cancellationToken).ConfigureAwait(false);
        var pairs = DecodePairs(raw);
        return raw.With(pairs.Count > 0 ? pairs[0] : null);
    }

    /// <summary>Reads every key under a prefix (recursively), in key order; empty when none exist.</summary>
    public async Task<ConsulResponse<IReadOnlyList<KvPair>>> ListAsync(string prefix, QueryOptions? query = null, CancellationToken cancellationToken = default)
    {
        var raw = await ReadAsync(prefix, "list keys under", [new("recurse", null)], query, cancellationToken).ConfigureAwait(false);
        return raw.With<IReadOnlyList<KvPair>>(DecodePairs(raw));
    }

    /// <summary>
    /// Lists key names under a prefix. With a <paramref name="separator"/> (usually <c>/</c>) only the next level
    /// is listed: deeper keys are folded into their folder name ending with the separator.
    /// </summary>
    public async Task<ConsulResponse<IReadOnlyList<string>>> KeysAsync(string prefix, string? separator = null, QueryOptions? query = null, CancellationToken cancellationToken = default)
    {
        List<KeyValuePair<string, string?>> parameters = [new("keys", null)];
        if (separator is not null)
        {
            parameters.Add(new("separator", separator));
        }
        var raw = await ReadAsync(prefix, "list key names under", parameters, query, cancellationToken).ConfigureAwait(false);
        IReadOnlyList<string> keys = raw.Status == HttpStatusCode.NotFound
            ? []
            : raw.Decode(ConsulJsonContext.Default.ListString);
        return raw.With(keys);
    }

    /// <summary>
    /// Writes a value. Returns Consul's answer: true when written; false when a <see cref="KvPutOptions.Cas"/>
    /// index was stale, or an <see cref="KvPutOptions.Acquire"/> found the lock held or in lock-delay, or a
    /// <see cref="KvPutOptions.Release"/> was by a session that does not hold it. Never retried.
    /// </summary>
    public async Task<ConsulResponse<bool>> PutAsync(string key, ReadOnlyMemory<byte> value, KvPutOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        List<KeyValuePair<string, string?>> parameters = [];
        if (options?.Flags is { } flags)
        {
            parameters.Add(new("flags", flags.ToString(CultureInfo.InvariantCulture)));
        }
        if (options?.Cas is { } cas)
        {
            parameters.Add(new("cas", cas.ToString(CultureInfo.InvariantCulture)));
        }
        if (options?.Acquire is { } acquire)
        {
            parameters.Add(new("acquire", acquire));
        }
        if (options?.Release is { } release)
        {
            parameters.Add(new("release", release));
        }
        var operation = options switch
        {
            { Acquire: not null } => "acquire lock on key",
            { Release: not null } => "release lock on key",
            { Cas: not null } => "check-and-set key",
            _ => "write key",
        };
        var request = new ConsulRequest(HttpMethod.Put, KeyPath(key), operation, Quote(key)) { Query = parameters, Body = value };
        var raw = await transport.SendAsync(request, cancellationToken).ConfigureAwait(false);
        return raw.With(DecodeBool(raw));
    }

    /// <summary>Writes a UTF-8 string.</summary>
    public Task<ConsulResponse<bool>> PutStringAsync(string key, string value, KvPutOptions? options = null, CancellationToken cancellationToken = default) =>
        PutAsync(key, KvValue.Utf8(value), options, cancellationToken);

    /// <summary>Writes a value as JSON.</summary>
    public Task<ConsulResponse<bool>> PutJsonAsync<T>(string key, T value, JsonTypeInfo<T> typeInfo, KvPutOptions? options = null, CancellationToken cancellationToken = default) =>
        PutAsync(key, KvValue.Json(value, typeInfo), options, cancellationToken);

    /// <summary>
    /// Deletes a key (or, with <see cref="KvDeleteOptions.Recurse"/>, a prefix). Returns false when a
    /// <see cref="KvDeleteOptions.Cas"/> index was stale. Deleting a missing key succeeds.
    /// </summary>
    public async Task<ConsulResponse<bool>> DeleteAsync(string key, KvDeleteOptions? options = null, CancellationToken cancellationToken = default)
    {
        List<KeyValuePair<string, string?>> parameters = [];
        if (options?.Cas is { } cas)
        {
            parameters.Add(new("cas", cas.ToString(CultureInfo.InvariantCulture)));
        }
        if (options?.Recurse == true)
        {
            parameters.Add(new("recurse", null));
        }
        var operation = options?.Recurse == true ? "delete keys under" : "delete key";
        var request = new ConsulRequest(HttpMethod.Delete, KeyPath(key), operation, Quote(key)) { Query = parameters };
        var raw = await transport.SendAsync(request, cancellationToken).ConfigureAwait(false);
        return raw.With(DecodeBool(raw));
    }

    private Task<ConsulRawResponse> ReadAsync(string key, string operation, List<KeyValuePair<string, string?>> parameters, QueryOptions? query, CancellationToken cancellationToken)
    {
        var request = new ConsulRequest(HttpMethod.Get, KeyPath(key), operation, Quote(key))
        {
            Query = parameters,
            Read = query ?? QueryOptions.None,
            Accepted = [HttpStatusCode.NotFound],
        };
        return transport.SendAsync(request, cancellationToken);
    }

    private static List<KvPair> DecodePairs(ConsulRawResponse raw)
    {
        if (raw.Status == HttpStatusCode.NotFound || raw.Body.Length == 0)
        {
            return [];
        }
        var wire = raw.Decode(ConsulJsonContext.Default.ListKvPairWire);
        return wire.Exists(w => w is null || w.Key is null) ? throw raw.Malformed("an entry without a Key", null) : wire.ConvertAll(KvPair.FromWire);
    }

    private static bool DecodeBool(ConsulRawResponse raw) => raw.Body.Length > 0 && raw.Decode(ConsulJsonContext.Default.Boolean);

    private static string KeyPath(string key) => "/v1/kv/" + ConsulRequest.EscapeKey(key);

    internal static string Quote(string key) => $"'{key}'";
}
