using Dtask.Core.Model;
using Dtask.Operator.Status;

namespace Dtask.Operator.Sources.Kubernetes;

/// <summary>
/// The objects the list and the watch have shown, by name: what the reconciler reads instead of a GET, and what
/// says whether a task is present as an object. The operator's own patches update it with their answers; an entry
/// marked stale (a patch was refused because the object changed) is read again from the API server.
/// A patch's answer can be newer than the watch events still on their way (the watch delivers the operator's own
/// earlier writes after the answer to a later one): an object whose resource version is older than the cached one's
/// never replaces it. Resource versions are compared as numbers when both are (they are etcd revisions on every API
/// server); otherwise the newest arrival wins.
/// </summary>
public sealed class TaskObjectCache
{
    private readonly Dictionary<TaskId, (ScheduledTaskObject Object, bool Stale)> objects = [];
    private readonly Lock gate = new();

    /// <summary>How many objects are cached.</summary>
    public int Count
    {
        get
        {
            lock (gate)
            {
                return objects.Count;
            }
        }
    }

    /// <summary>True when <paramref name="name"/> is present as an object.</summary>
    public bool Contains(TaskId name)
    {
        lock (gate)
        {
            return objects.ContainsKey(name);
        }
    }

    /// <summary>The cached object, unless it is absent or stale.</summary>
    public ScheduledTaskObject? Fresh(TaskId name)
    {
        lock (gate)
        {
            return objects.TryGetValue(name, out var entry) && !entry.Stale ? entry.Object : null;
        }
    }

    /// <summary>Stores <paramref name="item"/>; true when the change from the cached one needs a reconcile
    /// (<see cref="ScheduledTaskObject.DiffersForReconcile"/>).</summary>
    public bool Put(ScheduledTaskObject item)
    {
        ArgumentNullException.ThrowIfNull(item);
        lock (gate)
        {
            var before = objects.TryGetValue(item.Name, out var entry) ? entry.Object : null;
            if (before is not null && IsOlder(item, before))
            {
                // A late event of a version the cache already has a newer answer for.
                return false;
            }

            objects[item.Name] = (item, false);
            return item.DiffersForReconcile(before);
        }
    }

    /// <summary>
    /// Stores the answer of the operator's own patch, unless the watch has meanwhile stored another version than
    /// <paramref name="basedOn"/> (the one the patch was made from): a newer change must not be hidden by an older answer.
    /// </summary>
    public void PutAnswer(string? basedOn, ScheduledTaskObject answer)
    {
        ArgumentNullException.ThrowIfNull(answer);
        lock (gate)
        {
            if (!objects.TryGetValue(answer.Name, out var entry) || entry.Object.ResourceVersion == basedOn || IsOlder(entry.Object, answer))
            {
                objects[answer.Name] = (answer, false);
            }
        }
    }

    /// <summary>Stores an object read with a GET, when the cache has none or only a stale one (the watch may already hold a newer one).</summary>
    public void PutFetched(ScheduledTaskObject fetched)
    {
        ArgumentNullException.ThrowIfNull(fetched);
        lock (gate)
        {
            if (!objects.TryGetValue(fetched.Name, out var entry) || entry.Stale || IsOlder(entry.Object, fetched))
            {
                objects[fetched.Name] = (fetched, false);
            }
        }
    }

    /// <summary>True when both resource versions are numbers and <paramref name="item"/>'s is the smaller.</summary>
    private static bool IsOlder(ScheduledTaskObject item, ScheduledTaskObject than) =>
        ulong.TryParse(item.ResourceVersion, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var version)
        && ulong.TryParse(than.ResourceVersion, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var newer)
        && version < newer;

    /// <summary>Forgets <paramref name="name"/> (deleted); true when it was cached.</summary>
    public bool Remove(TaskId name)
    {
        lock (gate)
        {
            return objects.Remove(name);
        }
    }

    /// <summary>Marks <paramref name="name"/> stale: the next reconcile reads it from the API server.</summary>
    public void MarkStale(TaskId name)
    {
        lock (gate)
        {
            if (objects.TryGetValue(name, out var entry))
            {
                objects[name] = (entry.Object, true);
            }
        }
    }

    /// <summary>
    /// Replaces the content with a full list; returns the names that need a reconcile: new ones, changed ones
    /// (<see cref="ScheduledTaskObject.DiffersForReconcile"/>), and those no longer listed (deleted meanwhile).
    /// </summary>
    public IReadOnlyList<TaskId> Replace(IReadOnlyList<ScheduledTaskObject> items)
    {
        ArgumentNullException.ThrowIfNull(items);
        lock (gate)
        {
            var changed = new List<TaskId>();
            var listed = items.Select(i => i.Name).ToHashSet();
            foreach (var gone in objects.Keys.Where(k => !listed.Contains(k)).ToList())
            {
                objects.Remove(gone);
                changed.Add(gone);
            }

            foreach (var item in items)
            {
                var before = objects.TryGetValue(item.Name, out var entry) ? entry.Object : null;
                objects[item.Name] = (item, false);
                if (item.DiffersForReconcile(before))
                {
                    changed.Add(item.Name);
                }
            }

            return changed;
        }
    }
}
