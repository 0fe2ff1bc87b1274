using System.Text.Json;
using System.Text.Json.Nodes;
using Dtask.Core.Manifests;
using Dtask.Core.Model;
using Dtask.Operator.Status;

namespace Dtask.Operator.Sources.Kubernetes;

/// <summary>
/// One <c>ScheduledTask</c> object as the API server returned it: the raw JSON (what the validator reads, so a bad
/// field gives the same message as <c>dtask validate</c>) and the metadata the controller decides on.
/// </summary>
/// <param name="Json">The object, as returned.</param>
/// <param name="Name">Its namespace and name.</param>
/// <param name="ResourceVersion"><c>metadata.resourceVersion</c>.</param>
/// <param name="Generation"><c>metadata.generation</c> (bumped by the API server on each spec change).</param>
/// <param name="Deleting">True when <c>metadata.deletionTimestamp</c> is set: the object waits for its finalizers.</param>
/// <param name="Finalizers"><c>metadata.finalizers</c>.</param>
public sealed record ScheduledTaskObject(JsonObject Json, TaskId Name, string? ResourceVersion, long? Generation, bool Deleting, IReadOnlyList<string> Finalizers)
{
    /// <summary>The finalizer that keeps a deleted object until its spec is removed from Consul.</summary>
    public const string CleanupFinalizer = "dtask.dev/cleanup";

    /// <summary>True when <see cref="CleanupFinalizer"/> is present.</summary>
    public bool HasCleanupFinalizer => Finalizers.Contains(CleanupFinalizer, StringComparer.Ordinal);

    /// <summary>The status the object holds now, as far as it is readable; null when it has none.</summary>
    public ScheduledTaskStatus? Status
    {
        get
        {
            if (Json["status"] is not JsonObject status)
            {
                return null;
            }

            try
            {
                return status.Deserialize<ScheduledTaskStatus>(TaskJson.Options);
            }
            catch (JsonException)
            {
                return null;
            }
        }
    }

    /// <summary>The document the validator checks: the object without <c>status</c> (written by the operator, not the user).</summary>
    public JsonObject Manifest()
    {
        var copy = (JsonObject)Json.DeepClone();
        copy.Remove("status");
        return copy;
    }

    /// <summary>True when a change from <paramref name="before"/> to this object needs a reconcile: the spec
    /// (generation), the deletion mark or the finalizers changed. A status-only change (the operator's own write) does not.</summary>
    public bool DiffersForReconcile(ScheduledTaskObject? before) =>
        before is null
        || before.Generation != Generation
        || before.Deleting != Deleting
        || !before.Finalizers.SequenceEqual(Finalizers, StringComparer.Ordinal);

    /// <summary>Reads an object from the API server's JSON; null when it has no name.</summary>
    public static ScheduledTaskObject? From(JsonElement element) =>
        element.ValueKind == JsonValueKind.Object ? From(JsonNode.Parse(element.GetRawText()) as JsonObject) : null;

    /// <summary>Reads an object from the API server's JSON; null when it has no name.</summary>
    public static ScheduledTaskObject? From(JsonObject? json)
    {
        if (json?["metadata"] is not JsonObject metadata || Text(metadata["name"]) is not { Length: > 0 } name)
        {
            return null;
        }

        var ns = Text(metadata["namespace"]) is { Length: > 0 } given ? given : ObjectMeta.DefaultNamespace;
        long? generation = metadata["generation"] is JsonValue g && g.TryGetValue<long>(out var value) ? value : null;
        var finalizers = metadata["finalizers"] is JsonArray list ? list.Select(Text).OfType<string>().ToList() : [];
        return new ScheduledTaskObject(json, new TaskId(ns, name), Text(metadata["resourceVersion"]), generation,
            metadata["deletionTimestamp"] is not null, finalizers);
    }

    private static string? Text(JsonNode? node) =>
        node is JsonValue value && value.GetValueKind() == JsonValueKind.String ? value.GetValue<string>() : null;
}
