using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Dtask.Testing.Kubernetes;

/// <summary>
/// The server's storage: objects by resource, namespace and name, one global resource version counter bumped on
/// every write, the history of changes since the last compaction, and the open watches. Every operation runs under
/// one lock, so a watch never misses or repeats a change.
/// </summary>
internal sealed class ObjectStore(TimeProvider time)
{
    private readonly Lock gate = new();
    private readonly Dictionary<(KubernetesResourceType Type, string Namespace, string Name), JsonObject> objects = [];
    private readonly List<(long Version, KubernetesResourceType Type, string Namespace, string EventType, JsonObject Object)> history = [];
    private readonly List<WatchSubscription> watches = [];
    private TaskCompletionSource watchesChanged = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long resourceVersion = 1;
    private long compactedThrough;

    public long ResourceVersion
    {
        get
        {
            lock (gate)
            {
                return resourceVersion;
            }
        }
    }

    public int OpenWatches
    {
        get
        {
            lock (gate)
            {
                return watches.Count;
            }
        }
    }

    public JsonObject Get(KubernetesResourceType type, string ns, string name)
    {
        lock (gate)
        {
            return (JsonObject)Existing(type, ns, name).DeepClone();
        }
    }

    public JsonObject List(KubernetesResourceType type, string? ns)
    {
        lock (gate)
        {
            var items = new JsonArray();
            foreach (var item in objects
                         .Where(o => o.Key.Type == type && (ns is null || o.Key.Namespace == ns))
                         .OrderBy(o => o.Key.Namespace, StringComparer.Ordinal).ThenBy(o => o.Key.Name, StringComparer.Ordinal))
            {
                items.Add(item.Value.DeepClone());
            }

            return new JsonObject
            {
                ["apiVersion"] = type.ApiVersion,
                ["kind"] = type.ListKind,
                ["metadata"] = new JsonObject { ["resourceVersion"] = Text(resourceVersion) },
                ["items"] = items,
            };
        }
    }

    public JsonObject Create(KubernetesResourceType type, string ns, JsonObject body)
    {
        var name = body["metadata"]?["name"]?.GetValue<string>();
        if (string.IsNullOrEmpty(name))
        {
            throw ApiStatus.Invalid(type, name, "metadata.name: Required value: name or generateName is required");
        }

        CheckNamespace(body, ns);
        lock (gate)
        {
            if (objects.ContainsKey((type, ns, name)))
            {
                throw ApiStatus.AlreadyExists(type, name);
            }

            var created = (JsonObject)body.DeepClone();
            created["apiVersion"] = type.ApiVersion;
            created["kind"] = type.Kind;
            if (type.HasStatusSubresource)
            {
                created.Remove("status");
            }

            var metadata = Metadata(created);
            metadata["namespace"] = ns;
            metadata["uid"] = Guid.NewGuid().ToString();
            metadata["creationTimestamp"] = Now();
            metadata["generation"] = 1;
            metadata.Remove("deletionTimestamp");
            metadata.Remove("deletionGracePeriodSeconds");
            metadata["resourceVersion"] = Text(++resourceVersion);
            objects[(type, ns, name)] = created;
            Record(type, ns, "ADDED", created);
            return (JsonObject)created.DeepClone();
        }
    }

    /// <summary>
    /// Writes <paramref name="candidate"/> (a full object: a PUT body, or the current object with a patch applied)
    /// to the main resource, or only its <c>status</c> when <paramref name="statusOnly"/>.
    /// </summary>
    public JsonObject Replace(KubernetesResourceType type, string ns, string name, JsonObject candidate, bool statusOnly)
    {
        var candidateName = candidate["metadata"]?["name"]?.GetValue<string>();
        if (candidateName is not null && candidateName != name)
        {
            throw ApiStatus.BadRequest($"the name of the object ({candidateName}) does not match the name on the URL ({name})");
        }

        CheckNamespace(candidate, ns);
        lock (gate)
        {
            var current = Existing(type, ns, name);
            var precondition = candidate["metadata"]?["resourceVersion"]?.GetValue<string>();
            if (!string.IsNullOrEmpty(precondition) && precondition != current["metadata"]!["resourceVersion"]!.GetValue<string>())
            {
                throw ApiStatus.Conflict(type, name);
            }

            return Write(type, ns, name, current, Next(type, current, candidate, statusOnly), statusOnly);
        }
    }

    /// <summary>Applies a patch to the current object under the same lock as the write.</summary>
    public JsonObject Patch(KubernetesResourceType type, string ns, string name, Func<JsonObject, JsonObject> patch, bool statusOnly)
    {
        lock (gate)
        {
            return Replace(type, ns, name, patch((JsonObject)Existing(type, ns, name).DeepClone()), statusOnly);
        }
    }

    /// <summary>Deletes an object, or marks it deleting while it has finalizers; true when it is gone.</summary>
    public (JsonObject Object, bool Deleted) Delete(KubernetesResourceType type, string ns, string name)
    {
        lock (gate)
        {
            var current = Existing(type, ns, name);
            if (Finalizers(current) > 0)
            {
                if (current["metadata"]!["deletionTimestamp"] is not null)
                {
                    return ((JsonObject)current.DeepClone(), false);
                }

                var deleting = (JsonObject)current.DeepClone();
                var metadata = Metadata(deleting);
                metadata["deletionTimestamp"] = Now();
                metadata["deletionGracePeriodSeconds"] = 0;
                metadata["resourceVersion"] = Text(++resourceVersion);
                objects[(type, ns, name)] = deleting;
                Record(type, ns, "MODIFIED", deleting);
                return ((JsonObject)deleting.DeepClone(), false);
            }

            var deleted = (JsonObject)current.DeepClone();
            Metadata(deleted)["resourceVersion"] = Text(++resourceVersion);
            objects.Remove((type, ns, name));
            Record(type, ns, "DELETED", deleted);
            return ((JsonObject)deleted.DeepClone(), true);
        }
    }

    /// <summary>
    /// Opens a watch from <paramref name="fromVersion"/> (null or 0: the current objects as <c>ADDED</c> first);
    /// null when that version was compacted away.
    /// </summary>
    public WatchSubscription? Watch(KubernetesResourceType type, string? ns, long? fromVersion, bool bookmarks)
    {
        lock (gate)
        {
            var watch = new WatchSubscription(type, ns, bookmarks);
            if (fromVersion is null or 0)
            {
                foreach (var item in objects.Where(o => watch.Follows(o.Key.Type, o.Key.Namespace))
                             .OrderBy(o => long.Parse(o.Value["metadata"]!["resourceVersion"]!.GetValue<string>(), CultureInfo.InvariantCulture)))
                {
                    watch.Send("ADDED", item.Value);
                }
            }
            else if (fromVersion < compactedThrough)
            {
                return null;
            }
            else
            {
                foreach (var change in history.Where(c => c.Version > fromVersion && watch.Follows(c.Type, c.Namespace)))
                {
                    watch.Send(change.EventType, change.Object);
                }
            }

            watches.Add(watch);
            SignalWatchesChanged();
            return watch;
        }
    }

    public void Unsubscribe(WatchSubscription watch)
    {
        lock (gate)
        {
            if (watches.Remove(watch))
            {
                SignalWatchesChanged();
            }
        }
    }

    /// <summary>Forgets the history; open watches get an <c>ERROR</c> 410 event and end.</summary>
    public void Compact()
    {
        lock (gate)
        {
            compactedThrough = resourceVersion;
            history.Clear();
            foreach (var watch in watches)
            {
                watch.Send("ERROR", ApiStatus.Expired(resourceVersion));
                watch.End();
            }
        }
    }

    /// <summary>Cuts every open watch connection.</summary>
    public void DropWatches()
    {
        lock (gate)
        {
            foreach (var watch in watches)
            {
                watch.Abort();
            }
        }
    }

    /// <summary>Sends a <c>BOOKMARK</c> at the current resource version to the watches that asked for bookmarks.</summary>
    public void Bookmark()
    {
        lock (gate)
        {
            foreach (var watch in watches.Where(w => w.Bookmarks))
            {
                watch.Send("BOOKMARK", new JsonObject
                {
                    ["kind"] = watch.Type.Kind,
                    ["apiVersion"] = watch.Type.ApiVersion,
                    ["metadata"] = new JsonObject { ["resourceVersion"] = Text(resourceVersion) },
                });
            }
        }
    }

    /// <summary>Completes when at least <paramref name="count"/> watches are open.</summary>
    public async Task WaitForWatchesAsync(int count, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task changed;
            lock (gate)
            {
                if (watches.Count >= count)
                {
                    return;
                }

                changed = watchesChanged.Task;
            }

            await changed.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private static JsonObject Next(KubernetesResourceType type, JsonObject current, JsonObject candidate, bool statusOnly)
    {
        var next = (JsonObject)current.DeepClone();
        if (statusOnly)
        {
            next.Remove("status");
            if (candidate["status"] is { } status)
            {
                next["status"] = status.DeepClone();
            }

            return next;
        }

        next = (JsonObject)candidate.DeepClone();
        next["apiVersion"] = type.ApiVersion;
        next["kind"] = type.Kind;
        if (type.HasStatusSubresource)
        {
            next.Remove("status");
            if (current["status"] is { } status)
            {
                next["status"] = status.DeepClone();
            }
        }

        var metadata = Metadata(next);
        var kept = current["metadata"]!.AsObject();
        foreach (var field in new[] { "name", "namespace", "uid", "creationTimestamp", "generation", "deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion" })
        {
            metadata.Remove(field);
            if (kept[field] is { } value)
            {
                metadata[field] = value.DeepClone();
            }
        }

        return next;
    }

    private JsonObject Write(KubernetesResourceType type, string ns, string name, JsonObject current, JsonObject next, bool statusOnly)
    {
        if (JsonNode.DeepEquals(current, next))
        {
            return (JsonObject)current.DeepClone();
        }

        var metadata = Metadata(next);
        if (!statusOnly && !JsonNode.DeepEquals(WithoutMetadataAndStatus(current), WithoutMetadataAndStatus(next)))
        {
            metadata["generation"] = (current["metadata"]!["generation"]?.Deserialize<long>() ?? 0) + 1;
        }

        metadata["resourceVersion"] = Text(++resourceVersion);
        if (metadata["deletionTimestamp"] is not null && Finalizers(next) == 0)
        {
            objects.Remove((type, ns, name));
            Record(type, ns, "DELETED", next);
        }
        else
        {
            objects[(type, ns, name)] = next;
            Record(type, ns, "MODIFIED", next);
        }

        return (JsonObject)next.DeepClone();
    }

    private JsonObject Existing(KubernetesResourceType type, string ns, string name) =>
        objects.TryGetValue((type, ns, name), out var found) ? found : throw ApiStatus.NotFound(type, name);

    private void Record(KubernetesResourceType type, string ns, string eventType, JsonObject obj)
    {
        var snapshot = (JsonObject)obj.DeepClone();
        history.Add((resourceVersion, type, ns, eventType, snapshot));
        foreach (var watch in watches.Where(w => w.Follows(type, ns)))
        {
            watch.Send(eventType, snapshot);
        }
    }

    private void SignalWatchesChanged()
    {
        watchesChanged.TrySetResult();
        watchesChanged = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private string Now() => time.GetUtcNow().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    private static void CheckNamespace(JsonObject body, string ns)
    {
        var bodyNamespace = body["metadata"]?["namespace"]?.GetValue<string>();
        if (!string.IsNullOrEmpty(bodyNamespace) && bodyNamespace != ns)
        {
            throw ApiStatus.BadRequest("the namespace of the provided object does not match the namespace sent on the request");
        }
    }

    private static JsonObject Metadata(JsonObject obj)
    {
        if (obj["metadata"] is JsonObject metadata)
        {
            return metadata;
        }

        metadata = [];
        obj["metadata"] = metadata;
        return metadata;
    }

    private static int Finalizers(JsonObject obj) => obj["metadata"]?["finalizers"] is JsonArray finalizers ? finalizers.Count : 0;

    private static JsonObject WithoutMetadataAndStatus(JsonObject obj)
    {
        var copy = (JsonObject)obj.DeepClone();
        copy.Remove("metadata");
        copy.Remove("status");
        return copy;
    }

    private static string Text(long version) => version.ToString(CultureInfo.InvariantCulture);
}
