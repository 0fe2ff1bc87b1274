namespace Dtask.Core.Tests.Support;

/// <summary>Files of the repository (examples, fixtures, the committed CRD), found from the test binary.</summary>
internal static class RepoFiles
{
    public static string Root { get; } = FindRoot();

    public static string Path(params string[] parts) => System.IO.Path.Combine([Root, .. parts]);

    /// <summary>Paths relative to the root, so rows read well in test output.</summary>
    public static IEnumerable<string> Yaml(string folder) =>
        Directory.EnumerateFiles(Path(folder), "*.y*ml", SearchOption.AllDirectories)
            .Select(f => System.IO.Path.GetRelativePath(Root, f).Replace('\\', '/'))
            .Order(StringComparer.Ordinal);

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(System.IO.Path.Combine(dir.FullName, "Scheduler.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("Scheduler.sln not found above " + AppContext.BaseDirectory);
    }
}

/// <summary>A temporary directory removed after the test.</summary>
internal sealed class ScratchDirectory : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("dtask-core-test-").FullName;

    public string Write(string relativePath, string content)
    {
        var full = System.IO.Path.Combine(Path, relativePath);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(full)!);
        File.WriteAllText(full, content);
        return full;
    }

    public void Dispose() => Directory.Delete(Path, recursive: true);
}
