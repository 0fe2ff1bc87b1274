using Dtask.Core.Model;

namespace Dtask.Executor.Processes;

/// <summary>
/// What to start for a run: an argv executed without a shell, or a script run by <c>/bin/sh -c</c>; the variables
/// added to the executor's environment, the working directory and the timeout.
/// </summary>
/// <param name="Argv">The program and its arguments; for a shell script, <c>/bin/sh -c SCRIPT</c>.</param>
/// <param name="Display">How the command is shown in logs and notifications (the argv joined, or the script).</param>
public sealed record ChildCommand(IReadOnlyList<string> Argv, string Display)
{
    /// <summary>The shell that runs <see cref="Shell"/> scripts.</summary>
    public const string ShellPath = "/bin/sh";

    /// <summary>Variables added to (or replacing those of) the executor's environment.</summary>
    public IReadOnlyDictionary<string, string> Environment { get; init; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>
    /// Variables whose value is the content of a file on this node (<c>env[].valueFrom.file</c>), read when the child
    /// starts; the values are never recorded or logged.
    /// </summary>
    public IReadOnlyDictionary<string, string> EnvironmentFiles { get; init; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>The working directory; the executor's own when null.</summary>
    public string? WorkingDirectory { get; init; }

    /// <summary>How long the child may run before its process group is stopped; no limit when null.</summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary>An argv command, run without a shell.</summary>
    public static ChildCommand Exec(IReadOnlyList<string> argv)
    {
        ArgumentNullException.ThrowIfNull(argv);
        if (argv.Count == 0 || string.IsNullOrEmpty(argv[0]))
        {
            throw new ArgumentException("a command needs at least a program", nameof(argv));
        }

        return new ChildCommand([.. argv], string.Join(' ', argv.Select(QuoteForDisplay)));
    }

    /// <summary>A script run by <c>/bin/sh -c</c>.</summary>
    public static ChildCommand Shell(string script)
    {
        ArgumentException.ThrowIfNullOrEmpty(script);
        return new ChildCommand([ShellPath, "-c", script], script);
    }

    /// <summary>The command of a task spec (<c>command</c> or <c>shell</c>, <c>env</c>, <c>workingDir</c>, <c>timeout</c>); the spec must have passed validation.</summary>
    public static ChildCommand FromSpec(ScheduledTaskSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var command = spec.Shell is { } script ? Shell(script)
            : spec.Command is { Count: > 0 } argv ? Exec(argv)
            : throw new ArgumentException("the spec has neither command nor shell", nameof(spec));
        var environment = new Dictionary<string, string>(StringComparer.Ordinal);
        var files = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var variable in spec.Env ?? [])
        {
            if (string.IsNullOrEmpty(variable.Name))
            {
                continue;
            }

            if (variable.ValueFrom?.File is { } file)
            {
                files[variable.Name] = file;
            }
            else
            {
                environment[variable.Name] = variable.Value ?? "";
            }
        }

        return command with { Environment = environment, EnvironmentFiles = files, WorkingDirectory = spec.WorkingDir, Timeout = spec.TimeoutDuration };
    }

    private static string QuoteForDisplay(string word) =>
        word.Length > 0 && word.All(c => char.IsAsciiLetterOrDigit(c) || "-_./=:,@%+".Contains(c, StringComparison.Ordinal))
            ? word
            : "'" + word.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
}
