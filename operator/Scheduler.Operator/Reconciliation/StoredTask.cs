using Dtask.Consul.Kv;
using Dtask.Core.Manifests;
using Dtask.Core.State;

namespace Dtask.Operator.Reconciliation;

/// <summary>A task envelope as read from <c>tasks/&lt;ns&gt;/&lt;name&gt;</c>, with the ModifyIndex to CAS against.</summary>
/// <param name="Namespace">The namespace from the key.</param>
/// <param name="Name">The name from the key.</param>
/// <param name="ModifyIndex">The key's ModifyIndex when read.</param>
/// <param name="Envelope">The envelope; null when the value is not one (nobody can claim such a key).</param>
public sealed record StoredTask(string Namespace, string Name, ulong ModifyIndex, KvTaskSpec? Envelope)
{
    /// <summary><c>namespace/name</c>.</summary>
    public string Key => $"{Namespace}/{Name}";

    /// <summary>Reads a KV pair under <see cref="KvLayout.TasksPrefix"/>; null for keys that are not <c>ns/name</c>.</summary>
    public static StoredTask? From(KvPair pair, KvLayout layout)
    {
        ArgumentNullException.ThrowIfNull(pair);
        ArgumentNullException.ThrowIfNull(layout);
        if (!KvLayout.TrySplitTaskKey(pair.Key, layout.TasksPrefix, out var ns, out var name))
        {
            return null;
        }

        return new StoredTask(ns, name, pair.ModifyIndex, Parse(pair.ValueAsString()));
    }

    /// <summary>The envelope stored as <paramref name="json"/>; null when it is empty or not one.</summary>
    public static KvTaskSpec? Parse(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        try
        {
            return json.Length == 0 ? null : KvTaskSpec.Parse(json);
        }
#pragma warning disable CA1031 // Garbage of any kind in a task key reads as no envelope.
        catch (Exception e) when (e is not OutOfMemoryException)
#pragma warning restore CA1031
        {
            return null;
        }
    }
}
