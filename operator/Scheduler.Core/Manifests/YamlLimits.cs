namespace Dtask.Core.Manifests;

/// <summary>
/// The bounds every manifest file is read within (<c>docs/limits.md</c>). They are checked while the YAML is read,
/// event by event, before the document is built: a file beyond any of them is one validation error naming the
/// file, the document, the line and the column where the bound was crossed, and nothing of it is written anywhere.
/// </summary>
public sealed record YamlLimits
{
    /// <summary>The limits <c>dtask validate</c>, <c>apply</c>, <c>schedule</c> and the directory source use.</summary>
    public static YamlLimits Default { get; } = new();

    /// <summary>The largest file, in UTF-8 bytes: 3 MiB, the Kubernetes API server's request body limit.</summary>
    public long MaxFileBytes { get; init; } = 3 * 1024 * 1024;

    /// <summary>How deep collections may nest (a task needs about 5; aliases count with what they expand to).</summary>
    public int MaxDepth { get; init; } = 32;

    /// <summary>How many aliases (<c>*name</c>) one file may use.</summary>
    public int MaxAliases { get; init; } = 100;

    /// <summary>How many nodes (scalars, keys, sequences, mappings) one file may hold, each alias counted as the nodes it expands to.</summary>
    public int MaxNodes { get; init; } = 100_000;

    /// <summary>The longest scalar (a key or a value), in characters: 128 Ki.</summary>
    public int MaxScalarLength { get; init; } = 128 * 1024;
}
