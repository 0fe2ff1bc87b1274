namespace Dtask.Consul.Kv;

/// <summary>Options of a KV put. At most one of <see cref="Cas"/>, <see cref="Acquire"/>, <see cref="Release"/>.</summary>
public sealed record KvPutOptions
{
    /// <summary>The flags stored with the value.</summary>
    public ulong? Flags { get; init; }

    /// <summary>Write only if the key's ModifyIndex is this (0: only if the key does not exist).</summary>
    public ulong? Cas { get; init; }

    /// <summary>Write and take the key's lock with this session, if it is free (and no lock-delay is in force).</summary>
    public string? Acquire { get; init; }

    /// <summary>Write and release the key's lock, if this session holds it.</summary>
    public string? Release { get; init; }
}

/// <summary>Options of a KV delete.</summary>
public sealed record KvDeleteOptions
{
    /// <summary>Delete only if the key's ModifyIndex is this.</summary>
    public ulong? Cas { get; init; }

    /// <summary>Delete every key that starts with the given key (a prefix).</summary>
    public bool Recurse { get; init; }
}
