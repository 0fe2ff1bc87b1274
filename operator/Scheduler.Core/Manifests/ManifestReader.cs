using Dtask.Core.Validation;

namespace Dtask.Core.Manifests;

/// <summary>
/// Reads <c>ScheduledTask</c> manifests from YAML files (one or many documents each) and directories (recursively,
/// <c>*.yaml</c> and <c>*.yml</c>, in ordinal path order), checking every document with <see cref="TaskValidator"/>.
/// Empty documents are skipped. Each file is read within <see cref="YamlLimits.Default"/>: a file beyond them is an
/// invalid document naming the file, the document, the line and the column, like any other YAML error.
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
            documents.AddRange(ReadFile(file));
        }

        return documents;
    }

    /// <summary>
    /// Every non-empty document of <paramref name="file"/>; a file that cannot be opened or read (removed meanwhile, a
    /// dangling link, no permission) is one invalid document naming why.
    /// </summary>
    public static IReadOnlyList<ManifestDocument> ReadFile(string file)
    {
        string text;
        try
        {
            text = ReadBounded(file, YamlLimits.Default.MaxFileBytes);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [new ManifestDocument(new ManifestSource(file, 0), new TaskCheck(null, [new FieldError("", "the file cannot be read: " + e.Message)], "?"))];
        }

        return ReadText(text, file);
    }

    /// <summary>
    /// The text of <paramref name="file"/> (UTF-8), or, when it is larger than <paramref name="maxBytes"/>, its first
    /// <paramref name="maxBytes"/> + 1 bytes: enough for the reader to report the size, without reading a huge file whole.
    /// </summary>
    public static string ReadBounded(string file, long maxBytes)
    {
        using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        var buffer = new byte[(int)Math.Min(maxBytes + 1, stream.CanSeek ? Math.Max(stream.Length, 0) + 1 : maxBytes + 1)];
        var read = 0;
        while (read < buffer.Length && stream.Read(buffer, read, buffer.Length - read) is var n and > 0)
        {
            read += n;
        }

        var start = read >= 3 && buffer[0] == 0xEF && buffer[1] == 0xBB && buffer[2] == 0xBF ? 3 : 0;
        return System.Text.Encoding.UTF8.GetString(buffer, start, read - start);
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
