namespace Dtask.Testing;

/// <summary>A temporary directory, removed (with what it holds) on dispose.</summary>
public sealed class TempDirectory(string prefix = "dtask-test-") : IDisposable
{
    /// <summary>The directory.</summary>
    public string Path { get; } = Directory.CreateTempSubdirectory(prefix).FullName;

    /// <summary>Writes <paramref name="content"/> to <paramref name="relativePath"/> (creating folders) and returns the full path.</summary>
    public string Write(string relativePath, string content)
    {
        var full = System.IO.Path.Combine(Path, relativePath);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(full)!);
        File.WriteAllText(full, content);
        return full;
    }

    /// <summary>Removes the directory; a file still held open elsewhere does not fail the test.</summary>
    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // Something still writes there (a process being stopped); the OS temp folder is cleaned eventually.
        }
        catch (UnauthorizedAccessException)
        {
            // Same.
        }
    }
}
