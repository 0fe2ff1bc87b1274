using System.Text.Json;
using System.Text.Json.Nodes;
using Dtask.Core.Manifests;
using Dtask.Core.Model;

namespace Dtask.Operator.Sources.Kubernetes;

/// <summary>
/// The JSON merge patch (RFC 7386) that turns an object's current status into the one rebuilt from observations:
/// only the fields that differ, and <c>null</c> for those to remove (a merge patch keeps what it does not name,
/// so a <c>finishedAt</c> of the previous run would otherwise survive a new one). Both sides are compared in their
/// <see cref="TaskJson"/> form, so formatting differences of the API server do not count as changes.
/// </summary>
public static class StatusPatch
{
    /// <summary>The patch <c>{"status": {...}}</c>, or null when the status is already <paramref name="desired"/>.</summary>
    public static JsonObject? Between(ScheduledTaskStatus? current, ScheduledTaskStatus desired)
    {
        ArgumentNullException.ThrowIfNull(desired);
        var before = current is null ? new JsonObject() : Form(current);
        var after = Form(desired);
        var diff = Diff(before, after);
        return diff is null ? null : new JsonObject { ["status"] = diff };
    }

    private static JsonObject Form(ScheduledTaskStatus status) =>
        JsonSerializer.SerializeToNode(status, TaskJson.Options) as JsonObject ?? new JsonObject();

    /// <summary>The merge patch from <paramref name="before"/> to <paramref name="after"/>; null when equal.</summary>
    private static JsonObject? Diff(JsonObject before, JsonObject after)
    {
        var patch = new JsonObject();
        foreach (var (key, value) in after)
        {
            var old = before[key];
            if (JsonNode.DeepEquals(old, value))
            {
                continue;
            }

            if (old is JsonObject oldObject && value is JsonObject newObject)
            {
                if (Diff(oldObject, newObject) is { } nested)
                {
                    patch[key] = nested;
                }
            }
            else
            {
                patch[key] = value?.DeepClone();
            }
        }

        foreach (var (key, _) in before)
        {
            if (!after.ContainsKey(key))
            {
                patch[key] = null;
            }
        }

        return patch.Count == 0 ? null : patch;
    }
}
