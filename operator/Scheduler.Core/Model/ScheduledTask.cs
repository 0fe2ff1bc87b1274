using System.Text.Json.Serialization;

namespace Dtask.Core.Model;

/// <summary>
/// A task declared once and fired on a fleet of nodes: <c>apiVersion: dtask.dev/v1alpha1</c>, <c>kind: ScheduledTask</c>.
/// The same document is read from Kubernetes, from a directory of YAML files, or from <c>dtask apply</c>.
/// </summary>
public sealed record ScheduledTask
{
    /// <summary>The API group of the resource.</summary>
    public const string Group = "dtask.dev";

    /// <summary>The only served version.</summary>
    public const string Version = "v1alpha1";

    /// <summary><c>dtask.dev/v1alpha1</c>.</summary>
    public const string ApiVersionValue = Group + "/" + Version;

    /// <summary><c>ScheduledTask</c>.</summary>
    public const string KindValue = "ScheduledTask";

    /// <summary>Always <see cref="ApiVersionValue"/> for a valid task.</summary>
    public string ApiVersion { get; init; } = ApiVersionValue;

    /// <summary>Always <see cref="KindValue"/> for a valid task.</summary>
    public string Kind { get; init; } = KindValue;

    /// <summary>Name, namespace, labels and what the API server adds.</summary>
    public ObjectMeta Metadata { get; init; } = new();

    /// <summary>What to run, when and where.</summary>
    public ScheduledTaskSpec Spec { get; init; } = new();

    /// <summary>What was observed; written by the operator, never read to decide.</summary>
    public ScheduledTaskStatus? Status { get; init; }

    /// <summary><c>namespace/name</c>: the task's identity in KV and the seed of <c>H</c> fields and jitter.</summary>
    [JsonIgnore]
    public string Key => $"{Metadata.EffectiveNamespace}/{Metadata.Name}";

    /// <summary>The schedule part for the schedule math, seeded with <see cref="Key"/>; the spec must be valid.</summary>
    public Scheduling.ScheduleSpec ToScheduleSpec() => Spec.ToScheduleSpec(Key);
}

/// <summary>The subset of Kubernetes object metadata that dtask reads or keeps.</summary>
public sealed record ObjectMeta
{
    /// <summary>The namespace used when a manifest names none.</summary>
    public const string DefaultNamespace = "default";

    /// <summary>A DNS-1123 label, unique within the namespace.</summary>
    public string? Name { get; init; }

    /// <summary>A DNS-1123 label; <see cref="DefaultNamespace"/> when absent.</summary>
    public string? Namespace { get; init; }

    /// <summary>Kubernetes-style labels.</summary>
    public IReadOnlyDictionary<string, string>? Labels { get; init; }

    /// <summary>Kubernetes-style annotations.</summary>
    public IReadOnlyDictionary<string, string>? Annotations { get; init; }

    /// <summary>Bumped by the API server (or the operator for other sources) on each spec change.</summary>
    public long? Generation { get; init; }

    /// <summary>Set by the API server.</summary>
    public string? Uid { get; init; }

    /// <summary>Set by the API server.</summary>
    public string? ResourceVersion { get; init; }

    /// <summary>Set by the API server.</summary>
    public DateTimeOffset? CreationTimestamp { get; init; }

    /// <summary><see cref="Namespace"/>, or <see cref="DefaultNamespace"/> when it is absent or empty.</summary>
    [JsonIgnore]
    public string EffectiveNamespace => string.IsNullOrEmpty(Namespace) ? DefaultNamespace : Namespace;
}
