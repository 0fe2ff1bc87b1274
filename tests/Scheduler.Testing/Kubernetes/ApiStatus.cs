using System.Net;
using System.Text.Json.Nodes;

namespace Dtask.Testing.Kubernetes;

/// <summary>The API server's <c>Status</c> documents (<c>kind: Status</c>, <c>apiVersion: v1</c>) for failures.</summary>
internal static class ApiStatus
{
    public static JsonObject Failure(HttpStatusCode code, string reason, string message, JsonObject? details = null)
    {
        var status = new JsonObject
        {
            ["kind"] = "Status",
            ["apiVersion"] = "v1",
            ["metadata"] = new JsonObject(),
            ["status"] = "Failure",
            ["message"] = message,
            ["reason"] = reason,
        };
        if (details is not null)
        {
            status["details"] = details;
        }

        status["code"] = (int)code;
        return status;
    }

    public static JsonObject Details(KubernetesResourceType type, string? name) => new()
    {
        ["name"] = name,
        ["group"] = type.Group,
        ["kind"] = type.Plural,
    };

    public static ApiRejection NotFound(KubernetesResourceType type, string name) => new(Failure(HttpStatusCode.NotFound, "NotFound",
        $"{type.QualifiedName} \"{name}\" not found", Details(type, name)));

    public static ApiRejection AlreadyExists(KubernetesResourceType type, string name) => new(Failure(HttpStatusCode.Conflict, "AlreadyExists",
        $"{type.QualifiedName} \"{name}\" already exists", Details(type, name)));

    public static ApiRejection Conflict(KubernetesResourceType type, string name) => new(Failure(HttpStatusCode.Conflict, "Conflict",
        $"Operation cannot be fulfilled on {type.QualifiedName} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
        Details(type, name)));

    public static ApiRejection Invalid(KubernetesResourceType type, string? name, string message) => new(Failure(HttpStatusCode.UnprocessableEntity, "Invalid",
        $"{type.Kind}.{type.Group} \"{name}\" is invalid: {message}", Details(type, name)));

    public static ApiRejection BadRequest(string message) => new(Failure(HttpStatusCode.BadRequest, "BadRequest", message));

    public static JsonObject Expired(long requested) => Failure(HttpStatusCode.Gone, "Expired",
        $"too old resource version: {requested}");
}

/// <summary>A request the API server refuses, with the <c>Status</c> document it answers.</summary>
internal sealed class ApiRejection(JsonObject status) : Exception(status["message"]?.GetValue<string>())
{
    /// <summary>The <c>Status</c> document.</summary>
    public JsonObject Status { get; } = status;

    /// <summary>The HTTP status code.</summary>
    public HttpStatusCode Code => (HttpStatusCode)Status["code"]!.GetValue<int>();
}
