using System.Text.Json;
using System.Text.Json.Serialization;

namespace Dtask.Chaos.Checking;

/// <summary>The machine a chaos run ran on.</summary>
/// <param name="Os">The operating system.</param>
/// <param name="Cores">Logical processors.</param>
/// <param name="Runtime">The .NET runtime.</param>
/// <param name="Consul">The Consul version.</param>
public sealed record ChaosMachine(string Os, int Cores, string Runtime, string Consul);

/// <summary>A chaos run and its report, as written to <c>docs/benchmarks/chaos.json</c>.</summary>
/// <param name="StartedAt">When the run started.</param>
/// <param name="DurationSeconds">The fault phase.</param>
/// <param name="WallSeconds">The whole run, cluster start to clean-up.</param>
/// <param name="Servers">Consul servers.</param>
/// <param name="Executors">Executor processes.</param>
/// <param name="SessionTtlSeconds">The executors' session TTL.</param>
/// <param name="Machine">Where it ran.</param>
/// <param name="Passed">True when no invariant is broken.</param>
/// <param name="Report">The findings.</param>
/// <param name="Commit">The commit it ran at (<c>-dirty</c> when the work tree had changes).</param>
/// <param name="Seed">The seed of its fault plan (<c>CHAOS_SEED</c>): the same seed replays the same plan.</param>
/// <param name="PhaseStart">When the fault phase began (the origin of the fault times).</param>
/// <param name="ChildExits">The children of killed executors and when they were seen gone.</param>
public sealed record ChaosResult(DateTimeOffset StartedAt, double DurationSeconds, double WallSeconds, int Servers, int Executors, double SessionTtlSeconds,
    ChaosMachine Machine, bool Passed, ChaosReport Report, string Commit = "unknown", int Seed = 0, DateTimeOffset PhaseStart = default,
    IReadOnlyList<Faults.ChildExit>? ChildExits = null)
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter() },
    };

    /// <summary>Writes the result as indented JSON to <paramref name="path"/>, creating its folder.</summary>
    public async Task WriteAsync(string path, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (Path.GetDirectoryName(Path.GetFullPath(path)) is { } folder)
        {
            Directory.CreateDirectory(folder);
        }

        await File.WriteAllTextAsync(path, JsonSerializer.Serialize(this, Json) + "\n", cancellationToken).ConfigureAwait(false);
    }
}
