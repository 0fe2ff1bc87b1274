using Dtask.Testing;

namespace Dtask.Core.Tests.Support;

/// <summary>Files of the repository (examples, fixtures, the committed CRD), found from the test binary.</summary>
internal static class RepoFiles
{
    public static string Root => RepositoryRoot.Path;

    public static string Path(params string[] parts) => System.IO.Path.Combine([Root, .. parts]);

    /// <summary>Paths relative to the root, so rows read well in test output.</summary>
    public static IEnumerable<string> Yaml(string folder) =>
        Directory.EnumerateFiles(Path(folder), "*.y*ml", SearchOption.AllDirectories)
            .Select(f => System.IO.Path.GetRelativePath(Root, f).Replace('\\', '/'))
            .Order(StringComparer.Ordinal);
}
