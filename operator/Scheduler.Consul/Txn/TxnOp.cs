using System.Text.Json.Serialization;

namespace Dtask.Consul.Txn;

/// <summary>The KV verbs of a Consul transaction.</summary>
public enum TxnVerb
{
    /// <summary>Write the value.</summary>
    Set,
    /// <summary>Write the value if the key's ModifyIndex is <see cref="TxnOp.Index"/> (0: the key must not exist).</summary>
    Cas,
    /// <summary>Write the value and take the lock with <see cref="TxnOp.Session"/>.</summary>
    Lock,
    /// <summary>Write the value and release the lock held by <see cref="TxnOp.Session"/>.</summary>
    Unlock,
    /// <summary>Read the key (fails the transaction if it does not exist).</summary>
    Get,
    /// <summary>Read every key under the prefix.</summary>
    GetTree,
    /// <summary>Fail unless <see cref="TxnOp.Session"/> holds the key's lock.</summary>
    CheckSession,
    /// <summary>Fail unless the key's ModifyIndex is <see cref="TxnOp.Index"/>.</summary>
    CheckIndex,
    /// <summary>Fail if the key exists.</summary>
    CheckNotExists,
    /// <summary>Delete the key.</summary>
    Delete,
    /// <summary>Delete the key if its ModifyIndex is <see cref="TxnOp.Index"/>.</summary>
    DeleteCas,
    /// <summary>Delete every key under the prefix.</summary>
    DeleteTree,
}

/// <summary>One KV operation of a transaction. Build them with the static methods.</summary>
public sealed record TxnOp(TxnVerb Verb, string Key)
{
    /// <summary>The value written by Set, Cas, Lock and Unlock.</summary>
    public ReadOnlyMemory<byte>? Value { get; init; }

    /// <summary>The flags written with the value.</summary>
    public ulong Flags { get; init; }

    /// <summary>The index checked by Cas, CheckIndex and DeleteCas.</summary>
    public ulong Index { get; init; }

    /// <summary>The session of Lock, Unlock and CheckSession.</summary>
    public string? Session { get; init; }

    /// <summary>Write <paramref name="value"/>.</summary>
    public static TxnOp Set(string key, ReadOnlyMemory<byte> value, ulong flags = 0) => new(TxnVerb.Set, key) { Value = value, Flags = flags };

    /// <summary>Write <paramref name="value"/> if the key's ModifyIndex is <paramref name="index"/> (0: if absent).</summary>
    public static TxnOp Cas(string key, ReadOnlyMemory<byte> value, ulong index, ulong flags = 0) => new(TxnVerb.Cas, key) { Value = value, Index = index, Flags = flags };

    /// <summary>Take the key's lock with <paramref name="session"/> and write <paramref name="value"/>.</summary>
    public static TxnOp Lock(string key, ReadOnlyMemory<byte> value, string session) => new(TxnVerb.Lock, key) { Value = value, Session = session };

    /// <summary>Release the key's lock held by <paramref name="session"/>, writing <paramref name="value"/>.</summary>
    public static TxnOp Unlock(string key, ReadOnlyMemory<byte> value, string session) => new(TxnVerb.Unlock, key) { Value = value, Session = session };

    /// <summary>Read the key; the transaction fails if it does not exist.</summary>
    public static TxnOp Get(string key) => new(TxnVerb.Get, key);

    /// <summary>Read every key under a prefix.</summary>
    public static TxnOp GetTree(string prefix) => new(TxnVerb.GetTree, prefix);

    /// <summary>Fail unless <paramref name="session"/> holds the key's lock.</summary>
    public static TxnOp CheckSession(string key, string session) => new(TxnVerb.CheckSession, key) { Session = session };

    /// <summary>Fail unless the key's ModifyIndex is <paramref name="index"/>.</summary>
    public static TxnOp CheckIndex(string key, ulong index) => new(TxnVerb.CheckIndex, key) { Index = index };

    /// <summary>Fail if the key exists.</summary>
    public static TxnOp CheckNotExists(string key) => new(TxnVerb.CheckNotExists, key);

    /// <summary>Delete the key.</summary>
    public static TxnOp Delete(string key) => new(TxnVerb.Delete, key);

    /// <summary>
    /// Delete the key if its ModifyIndex is <paramref name="index"/>. A key that is gone counts as deleted: the operation
    /// succeeds. Use <see cref="DeleteExisting"/> when the transaction must fail then.
    /// </summary>
    public static TxnOp DeleteCas(string key, ulong index) => new(TxnVerb.DeleteCas, key) { Index = index };

    /// <summary>
    /// Delete the key, failing the transaction unless it still exists at <paramref name="index"/>: a check-index (which
    /// fails on a missing key) before the delete-cas (which does not).
    /// </summary>
    public static TxnOp[] DeleteExisting(string key, ulong index) => [CheckIndex(key, index), DeleteCas(key, index)];

    /// <summary>Delete every key under a prefix.</summary>
    public static TxnOp DeleteTree(string prefix) => new(TxnVerb.DeleteTree, prefix);

    /// <summary>The verb as Consul spells it, e.g. <c>check-session</c>.</summary>
    public string WireVerb => Verb switch
    {
        TxnVerb.Set => "set",
        TxnVerb.Cas => "cas",
        TxnVerb.Lock => "lock",
        TxnVerb.Unlock => "unlock",
        TxnVerb.Get => "get",
        TxnVerb.GetTree => "get-tree",
        TxnVerb.CheckSession => "check-session",
        TxnVerb.CheckIndex => "check-index",
        TxnVerb.CheckNotExists => "check-not-exists",
        TxnVerb.Delete => "delete",
        TxnVerb.DeleteCas => "delete-cas",
        TxnVerb.DeleteTree => "delete-tree",
        _ => throw new ArgumentOutOfRangeException(nameof(Verb), Verb, "unknown transaction verb"),
    };

    /// <summary>Describes the operation without its value, e.g. <c>cas 'dtask/x' at index 12</c>.</summary>
    public override string ToString() => Verb switch
    {
        TxnVerb.Cas or TxnVerb.CheckIndex or TxnVerb.DeleteCas => $"{WireVerb} '{Key}' at index {Index}",
        TxnVerb.Lock or TxnVerb.Unlock or TxnVerb.CheckSession => $"{WireVerb} '{Key}' with session {Session}",
        _ => $"{WireVerb} '{Key}'",
    };

    internal TxnOpWire ToWire() => new(new TxnKvWire(WireVerb, Key, Value?.ToArray(), Flags == 0 ? null : Flags,
        Index == 0 ? null : Index, Session));
}

internal sealed record TxnOpWire([property: JsonPropertyName("KV")] TxnKvWire Kv);

internal sealed record TxnKvWire(string Verb, string Key, byte[]? Value, ulong? Flags, ulong? Index, string? Session);

internal sealed record TxnResponseWire(List<TxnResultWire>? Results, List<TxnErrorWire>? Errors);

internal sealed record TxnResultWire([property: JsonPropertyName("KV")] Kv.KvPairWire? Kv);

internal sealed record TxnErrorWire(int OpIndex, string What);
