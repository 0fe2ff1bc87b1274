using Dtask.Core.Model;

namespace Dtask.Core.Validation;

/// <summary>The outcome of checking one document.</summary>
/// <param name="Task">The task as far as it could be read; null when the document is not a ScheduledTask at all. Use it only when <see cref="IsValid"/>.</param>
/// <param name="Errors">Every problem found, in document order; empty when valid.</param>
/// <param name="DisplayName"><c>namespace/name</c> as far as the document tells (<c>?</c> for a missing name), for messages.</param>
public sealed record TaskCheck(ScheduledTask? Task, IReadOnlyList<FieldError> Errors, string DisplayName)
{
    /// <summary>True when the document is a ScheduledTask without any problem.</summary>
    public bool IsValid => Task is not null && Errors.Count == 0;
}
