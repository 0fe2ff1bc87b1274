using Dtask.Core.Manifests;
using Dtask.Core.State;
using Dtask.Core.Validation;

namespace Dtask.Operator.Status;

/// <summary>
/// Why the source that owns a task cannot currently read its declaration, stored at
/// <c>&lt;prefix&gt;problems/&lt;namespace&gt;/&lt;name&gt;</c> by the directory source while the task's file is unreadable
/// or invalid (Consul keeps the last valid spec meanwhile), and removed once the file reads again or the task is gone.
/// <c>dtask get tasks</c> and <c>dtask describe</c> show it as <c>Ready=False</c> with these errors.
/// </summary>
/// <param name="Owner">The source that reported it (<c>dir:PATH</c>).</param>
/// <param name="Source">The file and document that last declared the task (<c>tasks/backup.yaml[0]</c>).</param>
/// <param name="Errors">What is wrong with it, each naming the field or the line and column, and the reason.</param>
public sealed record SourceProblem(string Owner, string Source, IReadOnlyList<string> Errors)
{
    /// <summary>The folder of every problem under <paramref name="layout"/>'s prefix.</summary>
    public static string Prefix(KvLayout layout)
    {
        ArgumentNullException.ThrowIfNull(layout);
        return layout.Prefix + "problems/";
    }

    /// <summary>The key of one task's problem.</summary>
    public static string KeyFor(KvLayout layout, string @namespace, string name) => $"{Prefix(layout)}{@namespace}/{name}";

    /// <summary>The errors as the status builder takes them, each prefixed with the source.</summary>
    public IReadOnlyList<FieldError> FieldErrors => [.. Errors.Select(e => new FieldError("", $"{Source}: {e}"))];

    /// <summary>The JSON stored in KV.</summary>
    public string ToJson() => TaskJson.Serialize(this);

    /// <summary>The stored problem, or null when the value is not one (it is then ignored).</summary>
    public static SourceProblem? TryParse(string json)
    {
        try
        {
            return TaskJson.Deserialize<SourceProblem>(json) is { Owner: not null, Source: not null, Errors: not null } problem ? problem : null;
        }
#pragma warning disable CA1031 // Garbage of any kind in a problems/ key reads as no problem.
        catch (Exception e) when (e is not OutOfMemoryException)
#pragma warning restore CA1031
        {
            return null;
        }
    }
}
