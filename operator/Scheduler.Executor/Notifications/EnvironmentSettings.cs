using System.Collections;

namespace Dtask.Executor.Notifications;

/// <summary>
/// Reads settings from a snapshot of environment variables (a dictionary, so tests never touch the process
/// environment), with secrets also read from files named by <c>NAME_FILE</c> variables (Kubernetes Secrets and
/// systemd credentials mount them as files).
/// </summary>
public sealed class EnvironmentSettings
{
    private readonly IReadOnlyDictionary<string, string?> variables;
    private readonly Func<string, string> readFile;

    /// <summary>Creates a reader over a set of variables.</summary>
    /// <param name="variables">The variables.</param>
    /// <param name="readFile">Reads a secret file; <see cref="File.ReadAllText(string)"/> when null.</param>
    public EnvironmentSettings(IReadOnlyDictionary<string, string?> variables, Func<string, string>? readFile = null)
    {
        ArgumentNullException.ThrowIfNull(variables);
        this.variables = variables;
        this.readFile = readFile ?? File.ReadAllText;
    }

    /// <summary>A snapshot of this process's environment variables.</summary>
    /// <returns>The variables by name.</returns>
    public static IReadOnlyDictionary<string, string?> ProcessVariables()
    {
        var snapshot = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (DictionaryEntry entry in Environment.GetEnvironmentVariables())
        {
            snapshot[(string)entry.Key] = entry.Value as string;
        }

        return snapshot;
    }

    /// <summary>The first of the named variables that is set and not blank, trimmed.</summary>
    /// <param name="names">Variable names, in order of preference.</param>
    /// <returns>The value, or null.</returns>
    public string? Get(params string[] names)
    {
        ArgumentNullException.ThrowIfNull(names);
        foreach (var name in names)
        {
            if (variables.TryGetValue(name, out var value) && !string.IsNullOrWhiteSpace(value))
            {
                return value.Trim();
            }
        }

        return null;
    }

    /// <summary>
    /// A secret from the first of the named variables that is set, or else from the file named by the first
    /// <c>NAME_FILE</c> variable that is set (its content, trimmed).
    /// </summary>
    /// <param name="names">Variable names, in order of preference.</param>
    /// <returns>The secret, or null when none is set.</returns>
    /// <exception cref="InvalidOperationException">A secret file cannot be read or is empty.</exception>
    public SecretText? Secret(params string[] names)
    {
        ArgumentNullException.ThrowIfNull(names);
        var direct = Get(names);
        if (direct is not null)
        {
            return new SecretText(direct);
        }

        foreach (var name in names)
        {
            var fileVariable = name + "_FILE";
            var path = Get(fileVariable);
            if (path is null)
            {
                continue;
            }

            string content;
            try
            {
                content = readFile(path).Trim();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new InvalidOperationException($"{fileVariable}: cannot read {path}: {e.GetType().Name}", e);
            }

            if (content.Length == 0)
            {
                throw new InvalidOperationException($"{fileVariable}: {path} is empty");
            }

            return new SecretText(content);
        }

        return null;
    }
}
