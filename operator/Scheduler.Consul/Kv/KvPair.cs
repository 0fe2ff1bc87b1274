using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace Dtask.Consul.Kv;

/// <summary>A key and its value as stored in Consul KV.</summary>
/// <param name="Key">The full key.</param>
/// <param name="Value">The value's bytes (empty when the key holds no value).</param>
/// <param name="Flags">The opaque 64-bit flags stored with the key.</param>
/// <param name="CreateIndex">The Raft index that created the key.</param>
/// <param name="ModifyIndex">The Raft index of the last write: the CAS index, and a monotonic fence per key.</param>
/// <param name="LockIndex">How many times the key has been acquired by a session.</param>
/// <param name="Session">The session holding the key's lock, or null.</param>
public sealed record KvPair(
    string Key,
    ReadOnlyMemory<byte> Value,
    ulong Flags,
    ulong CreateIndex,
    ulong ModifyIndex,
    ulong LockIndex,
    string? Session)
{
    /// <summary>The value decoded as UTF-8.</summary>
    public string ValueAsString() => Encoding.UTF8.GetString(Value.Span);

    /// <summary>The value decoded as JSON with System.Text.Json.</summary>
    /// <exception cref="JsonException">The value is not JSON of that shape.</exception>
    public T? ValueAsJson<T>(JsonTypeInfo<T> typeInfo) => Value.IsEmpty ? default : JsonSerializer.Deserialize(Value.Span, typeInfo);

    /// <summary>The value decoded as JSON with System.Text.Json (reflection-based).</summary>
    [System.Diagnostics.CodeAnalysis.RequiresUnreferencedCode("Reflection-based JSON; use the JsonTypeInfo overload when trimming.")]
    [System.Diagnostics.CodeAnalysis.RequiresDynamicCode("Reflection-based JSON; use the JsonTypeInfo overload for native AOT.")]
    public T? ValueAsJson<T>(JsonSerializerOptions? options = null) =>
        Value.IsEmpty ? default : JsonSerializer.Deserialize<T>(Value.Span, options);

    /// <summary>True when a session holds this key's lock.</summary>
    public bool IsLocked => !string.IsNullOrEmpty(Session);

    internal static KvPair FromWire(KvPairWire wire) => new(
        wire.Key, wire.Value ?? [], wire.Flags, wire.CreateIndex, wire.ModifyIndex, wire.LockIndex,
        string.IsNullOrEmpty(wire.Session) ? null : wire.Session);
}

/// <summary>Encodes values for KV: UTF-8 text and JSON.</summary>
public static class KvValue
{
    /// <summary>UTF-8 bytes of <paramref name="text"/>.</summary>
    public static ReadOnlyMemory<byte> Utf8(string text) => Encoding.UTF8.GetBytes(text);

    /// <summary>UTF-8 JSON of <paramref name="value"/>.</summary>
    public static ReadOnlyMemory<byte> Json<T>(T value, JsonTypeInfo<T> typeInfo) => JsonSerializer.SerializeToUtf8Bytes(value, typeInfo);

    /// <summary>UTF-8 JSON of <paramref name="value"/> (reflection-based).</summary>
    [System.Diagnostics.CodeAnalysis.RequiresUnreferencedCode("Reflection-based JSON; use the JsonTypeInfo overload when trimming.")]
    [System.Diagnostics.CodeAnalysis.RequiresDynamicCode("Reflection-based JSON; use the JsonTypeInfo overload for native AOT.")]
    public static ReadOnlyMemory<byte> Json<T>(T value, JsonSerializerOptions? options = null) =>
        JsonSerializer.SerializeToUtf8Bytes(value, options);
}

internal sealed record KvPairWire(
    string Key,
    byte[]? Value,
    ulong Flags,
    ulong CreateIndex,
    ulong ModifyIndex,
    ulong LockIndex,
    string? Session);
