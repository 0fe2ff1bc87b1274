using Dtask.Core.Validation;

namespace Dtask.Core.Manifests;

/// <summary>
/// Reads <c>ScheduledTask</c> manifests from YAML files (one or many documents each) and directories (recursively,
/// <c>*.yaml</c> and <c>*.yml</c>, in ordinal path order), checking every document with <see cref="TaskValidator"/>.
/// Empty documents are skipped.
/// </summary>
public static class ManifestReader
{
    /// <summary>Every document of every file under <paramref name="paths"/> (files or directories), then <see cref="DuplicateTasks.Mark"/>.</summary>
    /// <exception cref="FileNotFoundException">When a path is neither a file nor a directory.</exception>
    public static IReadOnlyList<ManifestDocument> Read(IEnumerable<string> paths)
    {
        ArgumentNullException.ThrowIfNull(paths);
        var documents = new List<ManifestDocument>();
        foreach (var path in paths)
        {
            documents.AddRange(ReadPath(path));
        }

        return DuplicateTasks.Mark(documents);
    }

    /// <summary>The manifest files under <paramref name="path"/>: the file itself, or a directory's YAML files.</summary>
    /// <exception cref="FileNotFoundException">When <paramref name="path"/> is neither a file nor a directory.</exception>
    public static IReadOnlyList<string> Files(string path)
    {
        if (File.Exists(path))
        {
            return [path];
        }

        if (Directory.Exists(path))
        {
            return [.. Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories)
                .Where(f => f.EndsWith(".yaml", StringComparison.Ordinal) || f.EndsWith(".yml", StringComparison.Ordinal))
                .Order(StringComparer.Ordinal)];
        }

        throw new FileNotFoundException($"{path}: no such file or directory", path);
    }

    /// <summary>Every non-empty document of the files under <paramref name="path"/>.</summary>
    public static IReadOnlyList<ManifestDocument> ReadPath(string path)
    {
        var documents = new List<ManifestDocument>();
        foreach (var file in Files(path))
        {
            documents.AddRange(ReadText(File.ReadAllText(file), file));
        }

        return documents;
    }

    /// <summary>Every non-empty document of <paramref name="yaml"/>, which came from <paramref name="file"/>.</summary>
    public static IReadOnlyList<ManifestDocument> ReadText(string yaml, string file)
    {
        var documents = new List<ManifestDocument>();
        foreach (var document in YamlDocumentReader.Read(yaml))
        {
            var source = new ManifestSource(file, document.Index);
            if (document.SyntaxError is { } syntaxError)
            {
                documents.Add(new ManifestDocument(source, new TaskCheck(null, [new FieldError("", "invalid YAML: " + syntaxError)], "?")));
            }
            else if (document.Content is not null)
            {
                documents.Add(new ManifestDocument(source, TaskValidator.Check(document.Content)));
            }
        }

        return documents;
    }
}
