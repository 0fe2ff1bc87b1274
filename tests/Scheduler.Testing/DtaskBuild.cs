namespace Dtask.Testing;

/// <summary>The built <c>dtask</c> program, to run as a separate process (the operator, executors, <c>dtask run</c>).</summary>
public static class DtaskBuild
{
    /// <summary>
    /// <c>operator/Scheduler.Cli/bin/&lt;configuration&gt;/&lt;framework&gt;/dtask.dll</c> of the same configuration and
    /// framework as the program built into <paramref name="baseDirectory"/> (<see cref="AppContext.BaseDirectory"/> by default).
    /// </summary>
    /// <exception cref="FileNotFoundException">It has not been built, or there is no repository above.</exception>
    public static string Dll(string? baseDirectory = null)
    {
        baseDirectory ??= AppContext.BaseDirectory;
        var here = new DirectoryInfo(baseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var framework = here.Name;
        var configuration = here.Parent?.Name ?? "Release";
        var root = RepositoryRoot.Find(baseDirectory) ?? throw new FileNotFoundException("Scheduler.sln not found above " + baseDirectory);
        var dll = Path.Combine(root, "operator", "Scheduler.Cli", "bin", configuration, framework, "dtask.dll");
        return File.Exists(dll) ? dll : throw new FileNotFoundException("the dtask executable was not built (dotnet build operator/Scheduler.Cli)", dll);
    }

    /// <summary>The <c>dotnet</c> host: <c>DOTNET_HOST_PATH</c> when set (as under <c>dotnet test</c>), else <c>dotnet</c> from PATH.</summary>
    public static string DotnetHost() =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";
}
