using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Dtask.Bench.Workload;

/// <summary>One task of a benchmark workload.</summary>
/// <param name="Name">Its name (namespace <see cref="Namespace"/>).</param>
/// <param name="Schedule">A cron expression, or null for <paramref name="Every"/>.</param>
/// <param name="Every">A period such as <c>1s</c>, or null for <paramref name="Schedule"/>.</param>
/// <param name="Command">The argv to run.</param>
/// <param name="History">Finished records kept.</param>
/// <param name="Suspended">Written suspended (nothing fires).</param>
internal sealed record BenchTask(string Name, string? Schedule, string? Every, IReadOnlyList<string> Command, int History = 5, bool Suspended = false)
{
    /// <summary>The namespace of every benchmark task.</summary>
    public const string Namespace = "bench";

    /// <summary>The manifest of this task as YAML (JSON-quoted strings, which YAML reads as they are).</summary>
    public string ToYaml()
    {
        var yaml = new StringBuilder();
        yaml.Append("apiVersion: dtask.dev/v1alpha1\nkind: ScheduledTask\nmetadata:\n  name: ").Append(Name)
            .Append("\n  namespace: ").Append(Namespace).Append("\nspec:\n");
        if (Schedule is not null)
        {
            yaml.Append("  schedule: ").Append(JsonSerializer.Serialize(Schedule)).Append('\n');
        }
        else
        {
            yaml.Append("  every: ").Append(Every).Append('\n');
        }

        yaml.Append("  command: [").Append(string.Join(", ", Command.Select(a => JsonSerializer.Serialize(a)))).Append("]\n");
        yaml.Append("  history: ").Append(History.ToString(CultureInfo.InvariantCulture)).Append('\n');
        if (Suspended)
        {
            yaml.Append("  suspend: true\n");
        }

        return yaml.ToString();
    }

    /// <summary><paramref name="count"/> tasks named <c>t-00000</c>, <c>t-00001</c>… made by <paramref name="make"/>.</summary>
    public static IReadOnlyList<BenchTask> Many(int count, Func<string, BenchTask> make)
    {
        ArgumentNullException.ThrowIfNull(make);
        return [.. Enumerable.Range(0, count).Select(i => make(string.Create(CultureInfo.InvariantCulture, $"t-{i:00000}")))];
    }
}
