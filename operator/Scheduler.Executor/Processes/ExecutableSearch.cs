namespace Dtask.Executor.Processes;

/// <summary>Finds the file a command's program names, the way <c>execvp</c> does, so a missing one is a clear reason rather than a failed exec.</summary>
internal static class ExecutableSearch
{
    /// <summary>
    /// The full path of <paramref name="program"/>: itself when it contains a <c>/</c> (relative to
    /// <paramref name="workingDirectory"/>), else the first executable match in <paramref name="path"/>. Null with
    /// <paramref name="problem"/> set when there is none.
    /// </summary>
    public static string? Resolve(string program, string? path, string? workingDirectory, out string? problem)
    {
        problem = null;
        if (program.Contains('/', StringComparison.Ordinal))
        {
            var full = Path.IsPathRooted(program) ? program : Path.GetFullPath(program, workingDirectory ?? Environment.CurrentDirectory);
            if (!File.Exists(full))
            {
                problem = $"no such executable: '{program}'";
                return null;
            }

            if (!IsExecutable(full))
            {
                problem = $"'{program}' is not executable";
                return null;
            }

            return full;
        }

        foreach (var folder in (path ?? "/usr/local/bin:/usr/bin:/bin").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(folder, program);
            if (File.Exists(candidate) && IsExecutable(candidate))
            {
                return candidate;
            }
        }

        problem = $"no such executable: '{program}' (not found in PATH)";
        return null;
    }

    private static bool IsExecutable(string file)
    {
        const UnixFileMode anyExecute = UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;
        if (OperatingSystem.IsWindows())
        {
            return true;
        }

        try
        {
            return (File.GetUnixFileMode(file) & anyExecute) != 0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}
