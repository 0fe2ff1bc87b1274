using System.Net;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using Dtask.Core.Model;
using Dtask.Operator.Status;
using k8s;
using k8s.Autorest;
using k8s.Models;

namespace Dtask.Operator.Sources.Kubernetes;

/// <summary>A watch event of a <c>ScheduledTask</c>: its type and the object (for a bookmark, only its resource version).</summary>
/// <param name="Type">Added, Modified, Deleted or Bookmark.</param>
/// <param name="Item">The object; null for a bookmark or an object without a name.</param>
/// <param name="ResourceVersion">The resource version the event carries.</param>
public sealed record TaskWatchEvent(WatchEventType Type, ScheduledTaskObject? Item, string? ResourceVersion);

/// <summary>
/// The calls the Kubernetes source makes on <c>scheduledtasks.dtask.dev</c>, through KubernetesClient's
/// <c>CustomObjects</c>: list, watch (with bookmarks), get, patch of the object (finalizers) and merge patch of its
/// <c>/status</c> subresource. Nothing is decided here.
/// </summary>
/// <param name="client">The API client.</param>
/// <param name="namespace">The namespace watched; null for every namespace.</param>
public sealed class ScheduledTaskApi(IKubernetes client, string? @namespace)
{
    private const string Plural = "scheduledtasks";

    /// <summary>The namespace watched; null for every namespace.</summary>
    public string? Namespace => @namespace;

    /// <summary>Lists the objects; returns them with the list's resource version, the point a watch starts from.</summary>
    public async Task<(IReadOnlyList<ScheduledTaskObject> Items, string? ResourceVersion)> ListAsync(CancellationToken cancellationToken)
    {
        var list = @namespace is null
            ? await client.CustomObjects.ListClusterCustomObjectAsync<JsonElement>(ScheduledTask.Group, ScheduledTask.Version, Plural,
                cancellationToken: cancellationToken).ConfigureAwait(false)
            : await client.CustomObjects.ListNamespacedCustomObjectAsync<JsonElement>(ScheduledTask.Group, ScheduledTask.Version, @namespace, Plural,
                cancellationToken: cancellationToken).ConfigureAwait(false);
        var items = list.TryGetProperty("items", out var array) && array.ValueKind == JsonValueKind.Array
            ? array.EnumerateArray().Select(ScheduledTaskObject.From).OfType<ScheduledTaskObject>().ToList()
            : [];
        var version = list.TryGetProperty("metadata", out var metadata) && metadata.TryGetProperty("resourceVersion", out var rv) ? rv.GetString() : null;
        return (items, version);
    }

    /// <summary>
    /// Watches from <paramref name="resourceVersion"/> with bookmarks. A <c>410 Gone</c> mid-stream reaches
    /// <paramref name="onError"/> as a <see cref="KubernetesException"/> and ends the enumeration; transport failures
    /// and an HTTP 410 answer are thrown.
    /// </summary>
    public async IAsyncEnumerable<TaskWatchEvent> WatchAsync(string? resourceVersion, TimeSpan timeout, Action<Exception> onError,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var seconds = (int)Math.Max(1, timeout.TotalSeconds);
        var events = @namespace is null
            ? client.CustomObjects.WatchListClusterCustomObjectAsync(ScheduledTask.Group, ScheduledTask.Version, Plural, allowWatchBookmarks: true,
                resourceVersion: resourceVersion, timeoutSeconds: seconds, onError: onError, cancellationToken: cancellationToken)
            : client.CustomObjects.WatchListNamespacedCustomObjectAsync(ScheduledTask.Group, ScheduledTask.Version, @namespace, Plural, allowWatchBookmarks: true,
                resourceVersion: resourceVersion, timeoutSeconds: seconds, onError: onError, cancellationToken: cancellationToken);
        await foreach (var (type, item) in events.ConfigureAwait(false))
        {
            var element = item is JsonElement json ? json : default;
            var version = element.ValueKind == JsonValueKind.Object && element.TryGetProperty("metadata", out var metadata)
                          && metadata.TryGetProperty("resourceVersion", out var rv) ? rv.GetString() : null;
            yield return new TaskWatchEvent(type, type == WatchEventType.Bookmark ? null : ScheduledTaskObject.From(element), version);
        }
    }

    /// <summary>The object now, or null when it does not exist.</summary>
    public async Task<ScheduledTaskObject?> GetAsync(TaskId name, CancellationToken cancellationToken)
    {
        try
        {
            var found = await client.CustomObjects.GetNamespacedCustomObjectAsync<JsonElement>(ScheduledTask.Group, ScheduledTask.Version,
                name.Namespace, Plural, name.Name, cancellationToken).ConfigureAwait(false);
            return ScheduledTaskObject.From(found);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    /// <summary>
    /// The <c>data</c> of Secret <paramref name="name"/> in <paramref name="secretNamespace"/> (for
    /// <c>valueFrom.secretKeyRef</c>), or null when it does not exist. Only called with <c>--resolve-secrets</c>.
    /// </summary>
    public async Task<IDictionary<string, byte[]>?> ReadSecretDataAsync(string secretNamespace, string name, CancellationToken cancellationToken)
    {
        try
        {
            var secret = await client.CoreV1.ReadNamespacedSecretAsync(name, secretNamespace, cancellationToken: cancellationToken).ConfigureAwait(false);
            return secret.Data ?? new Dictionary<string, byte[]>();
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    /// <summary>Applies a JSON patch to the object (used for its finalizers); returns the object after it.</summary>
    public Task<ScheduledTaskObject?> JsonPatchAsync(TaskId name, JsonArray patch, CancellationToken cancellationToken) =>
        PatchAsync(name, new V1Patch(patch.ToJsonString(), V1Patch.PatchType.JsonPatch), status: false, cancellationToken);

    /// <summary>Applies a JSON merge patch (<c>application/merge-patch+json</c>) to the <c>/status</c> subresource.</summary>
    public Task<ScheduledTaskObject?> MergePatchStatusAsync(TaskId name, JsonObject patch, CancellationToken cancellationToken) =>
        PatchAsync(name, new V1Patch(patch.ToJsonString(), V1Patch.PatchType.MergePatch), status: true, cancellationToken);

    private async Task<ScheduledTaskObject?> PatchAsync(TaskId name, V1Patch patch, bool status, CancellationToken cancellationToken)
    {
        var patched = status
            ? await client.CustomObjects.PatchNamespacedCustomObjectStatusAsync<JsonElement>(patch, ScheduledTask.Group, ScheduledTask.Version,
                name.Namespace, Plural, name.Name, cancellationToken: cancellationToken).ConfigureAwait(false)
            : await client.CustomObjects.PatchNamespacedCustomObjectAsync<JsonElement>(patch, ScheduledTask.Group, ScheduledTask.Version,
                name.Namespace, Plural, name.Name, cancellationToken: cancellationToken).ConfigureAwait(false);
        return ScheduledTaskObject.From(patched);
    }
}
