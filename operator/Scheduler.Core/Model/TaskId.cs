using Dtask.Core.Validation;

namespace Dtask.Core.Model;

/// <summary>A task's identity: its namespace and name (both DNS-1123 labels, so safe in KV keys).</summary>
/// <param name="Namespace">The namespace.</param>
/// <param name="Name">The name.</param>
public sealed record TaskId(string Namespace, string Name)
{
    /// <summary>The namespace of an id written without one.</summary>
    public const string DefaultNamespace = "default";

    /// <summary>Parses <c>NAME</c> or <c>NS/NAME</c>; false with the reason when it is neither.</summary>
    public static bool TryParse(string text, out TaskId? id, out string? problem)
    {
        ArgumentNullException.ThrowIfNull(text);
        id = null;
        var parts = text.Split('/');
        if (parts.Length > 2)
        {
            problem = $"'{text}' is not NAME or NAMESPACE/NAME";
            return false;
        }

        var (ns, name) = parts.Length == 2 ? (parts[0], parts[1]) : (DefaultNamespace, parts[0]);
        problem = KubernetesNames.CheckDnsLabel(ns) is { } badNs ? $"namespace {badNs}"
            : KubernetesNames.CheckDnsLabel(name) is { } badName ? $"name {badName}"
            : null;
        if (problem is not null)
        {
            return false;
        }

        id = new TaskId(ns, name);
        return true;
    }

    /// <summary><c>namespace/name</c>.</summary>
    public override string ToString() => $"{Namespace}/{Name}";
}
