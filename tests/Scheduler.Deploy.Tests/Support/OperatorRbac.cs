namespace Dtask.Deploy.Tests.Support;

/// <summary>
/// The Kubernetes API calls the operator makes, as (API group, resource, verb): the RBAC rules must grant
/// exactly these. Leases are granted in the operator's own namespace only (a Role), the rest cluster-wide.
/// </summary>
internal static class OperatorRbac
{
    public static readonly IReadOnlySet<(string Group, string Resource, string Verb)> ClusterWide = Expand(
        ("dtask.dev", "scheduledtasks", ["get", "list", "watch", "update", "patch"]),
        ("dtask.dev", "scheduledtasks/status", ["get", "update", "patch"]),
        ("dtask.dev", "scheduledtasks/finalizers", ["update"]),
        ("", "events", ["create", "patch"]));

    /// <summary>With <c>operator.resolveSecrets</c>: reading the Secrets of <c>valueFrom.secretKeyRef</c>.</summary>
    public static readonly IReadOnlySet<(string Group, string Resource, string Verb)> ResolveSecrets = Expand(
        ("", "secrets", ["get"]));

    public static readonly IReadOnlySet<(string Group, string Resource, string Verb)> LeaderElection = Expand(
        ("coordination.k8s.io", "leases", ["get", "create", "update"]));

    private static HashSet<(string, string, string)> Expand(params (string Group, string Resource, string[] Verbs)[] rules) =>
        rules.SelectMany(r => r.Verbs.Select(v => (r.Group, r.Resource, v))).ToHashSet();
}
