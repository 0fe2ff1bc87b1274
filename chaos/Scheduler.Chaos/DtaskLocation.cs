namespace Dtask.Chaos;

/// <summary>Finds the repository and the built <c>dtask.dll</c> next to this program's build.</summary>
public static class DtaskLocation
{
    /// <summary>The folder holding <c>Scheduler.sln</c> above <paramref name="start"/>, or null.</summary>
    public static string? RepositoryRoot(string start)
    {
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Scheduler.sln")))
            {
                return dir.FullName;
            }
        }

        return null;
    }

    /// <summary>
    /// <c>operator/Scheduler.Cli/bin/&lt;configuration&gt;/&lt;framework&gt;/dtask.dll</c> of the same configuration and
    /// framework as the assembly in <paramref name="baseDirectory"/>.
    /// </summary>
    /// <exception cref="FileNotFoundException">It has not been built.</exception>
    public static string DtaskDll(string baseDirectory)
    {
        var here = new DirectoryInfo(baseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var framework = here.Name;
        var configuration = here.Parent?.Name ?? "Release";
        var root = RepositoryRoot(baseDirectory) ?? throw new FileNotFoundException("Scheduler.sln not found above " + baseDirectory);
        var dll = Path.Combine(root, "operator", "Scheduler.Cli", "bin", configuration, framework, "dtask.dll");
        return File.Exists(dll) ? dll : throw new FileNotFoundException("the dtask executable was not built (dotnet build operator/Scheduler.Cli)", dll);
    }

    /// <summary>The <c>dotnet</c> host: <c>DOTNET_HOST_PATH</c> when set (as under <c>dotnet test</c>), else <c>dotnet</c> from PATH.</summary>
    public static string DotnetHost() =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";
}
