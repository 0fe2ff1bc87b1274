namespace Dtask.Testing;

/// <summary>The repository's root: the folder holding <c>Scheduler.sln</c>, found by walking up from a build output.</summary>
public static class RepositoryRoot
{
    private static readonly Lazy<string> FromBuild = new(() =>
        Find(AppContext.BaseDirectory) ?? throw new InvalidOperationException("Scheduler.sln not found above " + AppContext.BaseDirectory));

    /// <summary>The root above this program's build output; throws when there is none.</summary>
    public static string Path => FromBuild.Value;

    /// <summary>A path under <see cref="Path"/>.</summary>
    public static string Combine(params string[] parts) => System.IO.Path.Combine([Path, .. parts]);

    /// <summary>The folder holding <c>Scheduler.sln</c> at or above <paramref name="start"/>, or null.</summary>
    public static string? Find(string start)
    {
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(System.IO.Path.Combine(dir.FullName, "Scheduler.sln")))
            {
                return dir.FullName;
            }
        }

        return null;
    }
}
