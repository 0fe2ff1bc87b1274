using System.Collections.Specialized;
using System.Web;

namespace Dtask.Testing.Kubernetes;

/// <summary>One request as it reached the loopback API server.</summary>
/// <param name="Method">The HTTP method, upper case.</param>
/// <param name="Path">The URL path, such as <c>/apis/dtask.dev/v1alpha1/namespaces/ns/scheduledtasks/a/status</c>.</param>
/// <param name="Query">The query string without its leading <c>?</c>; empty when there is none.</param>
/// <param name="ContentType">The <c>Content-Type</c> header, when the request had one.</param>
/// <param name="Body">The request body as text; empty when there is none.</param>
public sealed record RecordedRequest(string Method, string Path, string Query, string? ContentType, string Body)
{
    /// <summary>The query parameters, decoded.</summary>
    public NameValueCollection QueryParameters => HttpUtility.ParseQueryString(Query);

    /// <summary>True for a write to a <c>/status</c> subresource.</summary>
    public bool IsStatusWrite => Method is "PUT" or "PATCH" && Path.EndsWith("/status", StringComparison.Ordinal);

    /// <summary>True for a watch (a list request with <c>watch=true</c>).</summary>
    public bool IsWatch => QueryParameters["watch"] is "true" or "1";

    /// <inheritdoc/>
    public override string ToString() =>
        $"{Method} {Path}{(Query.Length > 0 ? "?" + Query : "")}{(ContentType is null ? "" : " [" + ContentType + "]")} {Body}";
}
