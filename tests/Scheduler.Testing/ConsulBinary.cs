namespace Dtask.Testing;

/// <summary>Finds the <c>consul</c> executable the tests run.</summary>
public static class ConsulBinary
{
    /// <summary>The variable that names the binary explicitly.</summary>
    public const string Variable = "DTASK_CONSUL";

    /// <summary>
    /// <c>$DTASK_CONSUL</c>, else <c>consul</c> on PATH, else <c>.tools/bin/consul</c> in the nearest folder above
    /// the test assembly that has one.
    /// </summary>
    /// <exception cref="FileNotFoundException">No binary was found.</exception>
    public static string Locate()
    {
        if (Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } explicitPath)
        {
            return File.Exists(explicitPath)
                ? explicitPath
                : throw new FileNotFoundException($"{Variable} names '{explicitPath}', which does not exist.", explicitPath);
        }
        foreach (var folder in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(folder, "consul");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, ".tools", "bin", "consul");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
        throw new FileNotFoundException(
            $"No Consul binary: set {Variable}, put consul on PATH, or run `make tools` (scripts/install-consul.sh).");
    }
}
