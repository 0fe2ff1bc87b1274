using Dtask.Core.Manifests;
using Dtask.Core.Model;
using Dtask.Core.Validation;

namespace Dtask.Operator.Reconciliation;

/// <summary>
/// One task a source declares: a valid <see cref="ScheduledTask"/>, or an invalid document whose namespace and name
/// could still be read (it still declares that name, so the previous valid spec in KV is kept, not deleted).
/// </summary>
/// <param name="Namespace">The task's namespace, or null when the document's name is unreadable.</param>
/// <param name="Name">The task's name, or null when unreadable.</param>
/// <param name="Task">The task when valid; null when invalid.</param>
/// <param name="Errors">The validator's errors; empty when valid.</param>
/// <param name="Source">Where the declaration came from, for messages (<c>tasks/backup.yaml[0]</c>, <c>kubernetes</c>).</param>
public sealed record DesiredTask(string? Namespace, string? Name, ScheduledTask? Task, IReadOnlyList<FieldError> Errors, string Source)
{
    /// <summary>True when the task passed validation.</summary>
    public bool IsValid => Task is not null && Errors.Count == 0;

    /// <summary>True when the namespace and name are known (valid, or invalid with a readable name).</summary>
    public bool HasName => Namespace is not null && Name is not null;

    /// <summary><c>namespace/name</c>, or the best the document tells.</summary>
    public string DisplayName => HasName ? $"{Namespace}/{Name}" : $"{Namespace ?? "?"}/{Name ?? "?"}";

    /// <summary>A manifest document read by <see cref="ManifestReader"/> (already validated).</summary>
    public static DesiredTask From(ManifestDocument document)
    {
        ArgumentNullException.ThrowIfNull(document);
        if (document.IsValid)
        {
            var task = document.Task!;
            return new DesiredTask(task.Metadata.EffectiveNamespace, task.Metadata.Name, task, [], document.Source.ToString());
        }

        var (ns, name) = ReadableName(document.Check.Task);
        return new DesiredTask(ns, name, null, document.Errors, document.Source.ToString());
    }

    /// <summary>A typed task (from the Kubernetes API or built in code), checked with <see cref="TaskValidator.Validate(ScheduledTask)"/>.</summary>
    public static DesiredTask From(ScheduledTask task, string source = "kubernetes")
    {
        ArgumentNullException.ThrowIfNull(task);
        var errors = TaskValidator.Validate(task);
        if (errors.Count == 0)
        {
            return new DesiredTask(task.Metadata.EffectiveNamespace, task.Metadata.Name, task, [], source);
        }

        var (ns, name) = ReadableName(task);
        return new DesiredTask(ns, name, null, errors, source);
    }

    /// <summary>The namespace and name of a task as far as they are usable as KV key parts, else nulls.</summary>
    private static (string? Namespace, string? Name) ReadableName(ScheduledTask? task)
    {
        if (task?.Metadata is not { Name: { } name } metadata || KubernetesNames.CheckDnsLabel(name) is not null)
        {
            return (null, null);
        }

        var ns = metadata.EffectiveNamespace;
        return KubernetesNames.CheckDnsLabel(ns) is null ? (ns, name) : (null, null);
    }
}
