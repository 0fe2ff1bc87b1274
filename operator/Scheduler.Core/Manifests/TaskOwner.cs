using System.Text.Json;
using System.Text.Json.Serialization;

namespace Dtask.Core.Manifests;

/// <summary>Which source wrote a task into KV; one source never overwrites or deletes another's tasks.</summary>
/// <param name="Kind">The kind of source.</param>
/// <param name="Location">For <see cref="TaskOwnerKind.Directory"/>, the directory path; otherwise null.</param>
[JsonConverter(typeof(TaskOwnerJsonConverter))]
public sealed record TaskOwner(TaskOwnerKind Kind, string? Location = null)
{
    /// <summary>The Kubernetes API (a <c>ScheduledTask</c> custom resource).</summary>
    public static TaskOwner Kubernetes { get; } = new(TaskOwnerKind.Kubernetes);

    /// <summary><c>dtask apply</c>.</summary>
    public static TaskOwner Cli { get; } = new(TaskOwnerKind.Cli);

    /// <summary>A directory of manifests (a GitOps checkout).</summary>
    public static TaskOwner Directory(string path) => new(TaskOwnerKind.Directory, path);

    /// <summary><c>kubernetes</c>, <c>cli</c> or <c>dir:&lt;path&gt;</c>.</summary>
    public override string ToString() => Kind switch
    {
        TaskOwnerKind.Kubernetes => "kubernetes",
        TaskOwnerKind.Cli => "cli",
        _ => "dir:" + Location,
    };

    /// <summary>Reads the form written by <see cref="ToString"/>.</summary>
    public static bool TryParse(string? text, out TaskOwner owner)
    {
        owner = Cli;
        switch (text)
        {
            case "kubernetes":
                owner = Kubernetes;
                return true;
            case "cli":
                return true;
            case not null when text.StartsWith("dir:", StringComparison.Ordinal) && text.Length > 4:
                owner = Directory(text[4..]);
                return true;
            default:
                return false;
        }
    }
}

/// <summary>The kinds of <see cref="TaskOwner"/>.</summary>
public enum TaskOwnerKind
{
    /// <summary>The Kubernetes API.</summary>
    Kubernetes,

    /// <summary>A directory of manifests.</summary>
    Directory,

    /// <summary><c>dtask apply</c>.</summary>
    Cli,
}

/// <summary>Writes a <see cref="TaskOwner"/> as its string form.</summary>
public sealed class TaskOwnerJsonConverter : JsonConverter<TaskOwner>
{
    /// <inheritdoc />
    public override TaskOwner Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        var text = reader.GetString();
        return TaskOwner.TryParse(text, out var owner)
            ? owner
            : throw new JsonException($"'{text}' is not a task owner; expected kubernetes, cli or dir:<path>");
    }

    /// <inheritdoc />
    public override void Write(Utf8JsonWriter writer, TaskOwner value, JsonSerializerOptions options) =>
        writer.WriteStringValue(value.ToString());
}
