using System.Text.Json;
using System.Text.Json.Serialization;

namespace Dtask.Bench.Report;

/// <summary>
/// <c>results.json</c>: written whole after a run. When only some scenarios ran, the others' last results are kept from
/// the previous file (each result says when it ran through <see cref="BenchReport.StartedAt"/> of the run that made it).
/// </summary>
internal static class ResultsFile
{
    private static readonly JsonSerializerOptions Options = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>Reads a previous file; null when there is none or it cannot be read.</summary>
    public static BenchReport? Read(string path)
    {
        try
        {
            return File.Exists(path) ? JsonSerializer.Deserialize<BenchReport>(File.ReadAllText(path), Options) : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>The results of <paramref name="current"/>, plus those of <paramref name="previous"/> for scenarios that did not run now.</summary>
    public static BenchReport Merge(BenchReport current, BenchReport? previous)
    {
        ArgumentNullException.ThrowIfNull(current);
        if (previous is null)
        {
            return current;
        }

        var ran = current.Results.Select(r => r.Name).ToHashSet(StringComparer.Ordinal);
        var kept = previous.Results.Where(r => !ran.Contains(r.Name)).Select(r => r with { Plots = [] });
        var all = current.Results.Concat(kept).OrderBy(r => Order(r.Name)).ToList();
        return current with { Results = all };
    }

    /// <summary>Writes <paramref name="report"/>.</summary>
    public static void Write(string path, BenchReport report)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, JsonSerializer.Serialize(report, Options) + "\n");
    }

    private static int Order(string name)
    {
        var index = BenchSettings.AllScenarios.ToList().IndexOf(name);
        return index < 0 ? int.MaxValue : index;
    }
}
