namespace Dtask.Core.Validation;

/// <summary>One problem of a document: the field path (<c>spec.env[2].name</c>, <c>metadata.name</c>) and the reason.</summary>
/// <param name="Path">Dotted path from the document root; empty when the problem is the document itself.</param>
/// <param name="Reason">What is wrong, in words a user can act on.</param>
public sealed record FieldError(string Path, string Reason)
{
    /// <summary><c>path: reason</c>.</summary>
    public override string ToString() => Path.Length == 0 ? Reason : $"{Path}: {Reason}";
}
