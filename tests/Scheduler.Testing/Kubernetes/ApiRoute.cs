using System.Net;

namespace Dtask.Testing.Kubernetes;

/// <summary>
/// What a URL path names: a resource's collection (in a namespace, or across all of them), one object, or one
/// object's subresource.
/// </summary>
/// <param name="Type">The resource.</param>
/// <param name="Namespace">The namespace; null for the collection across all namespaces.</param>
/// <param name="Name">The object's name; null for a collection.</param>
/// <param name="Subresource">The subresource, such as <c>status</c>; null for the object itself.</param>
internal sealed record ApiRoute(KubernetesResourceType Type, string? Namespace, string? Name, string? Subresource)
{
    /// <summary>
    /// Parses <c>/apis/{group}/{version}/{plural}</c> and
    /// <c>/apis/{group}/{version}/namespaces/{ns}/{plural}[/{name}[/{subresource}]]</c>, and the same under
    /// <c>/api/{version}</c> for the core group.
    /// </summary>
    public static ApiRoute Parse(string path)
    {
        var segments = path.Trim('/').Split('/').Select(Uri.UnescapeDataString).ToArray();
        if (segments is ["api", var coreVersion, ..])
        {
            segments = ["apis", "", coreVersion, .. segments[2..]];
        }

        if (segments is ["apis", var group, var version, .. var rest])
        {
            (string? ns, string plural, string? name, string? subresource)? parts = rest switch
            {
                [var plural] => (null, plural, null, null),
                ["namespaces", var ns, var plural] => (ns, plural, null, null),
                ["namespaces", var ns, var plural, var name] => (ns, plural, name, null),
                ["namespaces", var ns, var plural, var name, var subresource] => (ns, plural, name, subresource),
                _ => null,
            };
            var type = KubernetesResourceType.Served.FirstOrDefault(t => t.Group == group && t.Version == version && t.Plural == parts?.plural);
            if (parts is { } found && type is not null && (found.subresource is null || (found.subresource == "status" && type.HasStatusSubresource)))
            {
                return new ApiRoute(type, found.ns, found.name, found.subresource);
            }
        }

        throw new ApiRejection(ApiStatus.Failure(HttpStatusCode.NotFound, "NotFound", "the server could not find the requested resource"));
    }
}
