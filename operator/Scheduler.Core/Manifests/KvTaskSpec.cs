using System.Text.Json.Serialization;
using Dtask.Core.Model;

namespace Dtask.Core.Manifests;

/// <summary>
/// The value at <c>&lt;prefix&gt;tasks/&lt;namespace&gt;/&lt;name&gt;</c>: what executors read to schedule a task.
/// Written only for specs that passed validation.
/// </summary>
public sealed record KvTaskSpec
{
    /// <summary>The task's namespace.</summary>
    public required string Namespace { get; init; }

    /// <summary>The task's name.</summary>
    public required string Name { get; init; }

    /// <summary>The source's generation of the spec (<c>metadata.generation</c> in Kubernetes).</summary>
    public required long Generation { get; init; }

    /// <summary><see cref="TaskJson.SpecHash"/> of <see cref="Spec"/>: lets writers skip unchanged specs.</summary>
    public required string SpecHash { get; init; }

    /// <summary>Which source wrote it.</summary>
    public required TaskOwner Owner { get; init; }

    /// <summary>The spec, as in the manifest.</summary>
    public required ScheduledTaskSpec Spec { get; init; }

    /// <summary>
    /// When the task was last resumed (its stored spec went from suspended to not suspended), by the writer's clock.
    /// Slots at or before it are not due on any executor, so one that starts later does not take the slots of the
    /// suspension for missed ones. Carried over by every later write; absent for a task never resumed.
    /// </summary>
    public DateTimeOffset? ResumedAt { get; init; }

    /// <summary>
    /// The writer's ECDSA P-256 signature of everything else in the envelope (<see cref="SpecSigning"/>); absent when
    /// the writer has no signing key. Executors given trusted keys run only specs whose signature verifies.
    /// </summary>
    public SpecSignature? Signature { get; init; }

    /// <summary><c>namespace/name</c>.</summary>
    [JsonIgnore]
    public string Key => $"{Namespace}/{Name}";

    /// <summary>The envelope of a validated <paramref name="task"/>; generation 1 when the source has none.</summary>
    public static KvTaskSpec From(ScheduledTask task, TaskOwner owner) => new()
    {
        Namespace = task.Metadata.EffectiveNamespace,
        Name = task.Metadata.Name ?? throw new ArgumentException("the task has no metadata.name", nameof(task)),
        Generation = task.Metadata.Generation ?? 1,
        SpecHash = TaskJson.SpecHash(task.Spec),
        Owner = owner,
        Spec = task.Spec,
    };

    /// <summary>
    /// This envelope as written over <paramref name="stored"/>: <see cref="ResumedAt"/> becomes <paramref name="now"/>
    /// when the write resumes the task (stored suspended, this one not), and is carried over from the stored one otherwise.
    /// </summary>
    public KvTaskSpec Over(KvTaskSpec? stored, DateTimeOffset now) =>
        this with { ResumedAt = stored is { Spec.IsSuspended: true } && !Spec.IsSuspended ? now : stored?.ResumedAt };

    /// <summary>The KV key under <paramref name="prefix"/> (such as <c>dtask/</c>) for a task.</summary>
    public static string KeyFor(string prefix, string @namespace, string name) =>
        $"{(prefix.EndsWith('/') || prefix.Length == 0 ? prefix : prefix + "/")}tasks/{@namespace}/{name}";

    /// <summary>The JSON stored in KV.</summary>
    public string ToJson() => TaskJson.Serialize(this);

    /// <summary>Reads the JSON stored in KV.</summary>
    /// <exception cref="System.Text.Json.JsonException">When it is not a task envelope.</exception>
    public static KvTaskSpec Parse(string json) => TaskJson.Deserialize<KvTaskSpec>(json);
}
