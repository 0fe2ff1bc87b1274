using Dtask.Core.Model;
using Dtask.Core.Validation;

namespace Dtask.Core.Manifests;

/// <summary>Where a document came from: a file and the document's position in it (from 0).</summary>
public sealed record ManifestSource(string File, int Index)
{
    /// <summary><c>examples/backup.yaml[1]</c>.</summary>
    public override string ToString() => $"{File}[{Index}]";
}

/// <summary>A document read from a manifest file, already checked by <see cref="TaskValidator"/>.</summary>
public sealed record ManifestDocument(ManifestSource Source, TaskCheck Check)
{
    /// <summary>The task, when the document is valid; otherwise null.</summary>
    public ScheduledTask? Task => Check.IsValid ? Check.Task : null;

    /// <summary>Every problem of the document.</summary>
    public IReadOnlyList<FieldError> Errors => Check.Errors;

    /// <summary>True when the document is a valid ScheduledTask.</summary>
    public bool IsValid => Check.IsValid;

    /// <summary>Each error as a line: <c>examples/bad.yaml[1] default/backup: spec.schedule: reason</c>.</summary>
    public IEnumerable<string> ErrorLines() => Errors.Select(e => $"{Source} {Check.DisplayName}: {e}");
}
