using System.Text.Json.Nodes;

namespace Dtask.Testing.Kubernetes;

/// <summary>
/// A namespaced resource the loopback API server serves: where it lives in the URL space, what its objects are
/// called, and whether writes to it are split between the main resource and a <c>/status</c> subresource.
/// </summary>
/// <param name="Group">The API group; empty for the core group (<c>/api/v1</c>).</param>
/// <param name="Version">The served version.</param>
/// <param name="Plural">The resource name in URLs.</param>
/// <param name="Kind">The kind of one object.</param>
/// <param name="HasStatusSubresource">True when <c>status</c> is written only through <c>/status</c>.</param>
public sealed record KubernetesResourceType(string Group, string Version, string Plural, string Kind, bool HasStatusSubresource)
{
    /// <summary>dtask's own resource: <c>dtask.dev/v1alpha1</c> <c>scheduledtasks</c>, with a status subresource.</summary>
    public static KubernetesResourceType ScheduledTasks { get; } = new("dtask.dev", "v1alpha1", "scheduledtasks", "ScheduledTask", true);

    /// <summary><c>coordination.k8s.io/v1</c> <c>leases</c>, used for leader election.</summary>
    public static KubernetesResourceType Leases { get; } = new("coordination.k8s.io", "v1", "leases", "Lease", false);

    /// <summary>Core <c>v1</c> <c>secrets</c>, read by an operator that resolves <c>valueFrom.secretKeyRef</c>.</summary>
    public static KubernetesResourceType Secrets { get; } = new("", "v1", "secrets", "Secret", false);

    /// <summary>The resource types every server serves.</summary>
    public static IReadOnlyList<KubernetesResourceType> Served { get; } = [ScheduledTasks, Leases, Secrets];

    /// <summary><c>group/version</c> (just the version for the core group), the <c>apiVersion</c> of its objects.</summary>
    public string ApiVersion => Group.Length == 0 ? Version : $"{Group}/{Version}";

    /// <summary>The kind of a list of these objects.</summary>
    public string ListKind => Kind + "List";

    /// <summary>A manifest of this resource: <c>apiVersion</c>, <c>kind</c>, name, namespace, optional finalizers, and <c>spec</c>.</summary>
    public JsonObject Manifest(string @namespace, string name, JsonObject spec, params string[] finalizers)
    {
        var metadata = new JsonObject { ["name"] = name, ["namespace"] = @namespace };
        if (finalizers.Length > 0)
        {
            metadata["finalizers"] = new JsonArray([.. finalizers.Select(f => JsonValue.Create(f))]);
        }

        return new JsonObject
        {
            ["apiVersion"] = ApiVersion,
            ["kind"] = Kind,
            ["metadata"] = metadata,
            ["spec"] = spec.DeepClone(),
        };
    }

    /// <summary><c>plural.group</c>, as the API server names the resource in its messages.</summary>
    public string QualifiedName => Group.Length == 0 ? Plural : $"{Plural}.{Group}";
}
