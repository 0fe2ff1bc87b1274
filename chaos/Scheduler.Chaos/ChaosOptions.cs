namespace Dtask.Chaos;

/// <summary>The settings of a chaos run.</summary>
public sealed record ChaosOptions
{
    /// <summary>The default fault phase: ten minutes (every fault kind at least twice).</summary>
    public static readonly TimeSpan DefaultDuration = TimeSpan.FromMinutes(10);

    /// <summary>How long faults are injected (the full plan from 120 s, the short plan below).</summary>
    public TimeSpan Duration { get; init; } = DefaultDuration;

    /// <summary>Consul servers.</summary>
    public int Servers { get; init; } = 3;

    /// <summary>Executor processes.</summary>
    public int Executors { get; init; } = 5;

    /// <summary>The executors' session TTL: Consul's minimum, so a dead holder's lock is released within the run.</summary>
    public TimeSpan SessionTtl { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The built <c>dtask.dll</c> the executors run.</summary>
    public required string DtaskDll { get; init; }

    /// <summary>The <c>dotnet</c> host that runs it.</summary>
    public string DotnetHost { get; init; } = "dotnet";

    /// <summary>Where the JSON report goes; none when null.</summary>
    public string? ReportPath { get; init; }

    /// <summary>The seed of the fault plan (<c>CHAOS_SEED</c>): the same seed replays the same plan.</summary>
    public int Seed { get; init; }

    /// <summary>The Markdown file whose chaos section the run rewrites (with the timeline picture beside the JSON report); none when null.</summary>
    public string? BenchmarksPath { get; init; }

    /// <summary>
    /// Write the tasks into KV before the executors start (so a node on a wrong clock meets them in its first seconds,
    /// before its skew guard has any reference besides its own agent). When false, the tasks are applied once every
    /// executor watches and every executor on a clock off by more than the skew limit has said its guard holds: the run
    /// then judges the steady state.
    /// </summary>
    public bool TasksBeforeExecutors { get; init; } = true;

    /// <summary>
    /// The name of the known defect the executors' build puts back (<c>make chaos-defect</c>), or null for the real build.
    /// With a defect the run is expected to fail, and its publication is the defect section, not the chaos figures.
    /// </summary>
    public string? Defect { get; init; }

    /// <summary>When given, the full plan keeps only these fault kinds (<c>--only</c>): a run aimed at some faults.</summary>
    public IReadOnlySet<Faults.FaultKind>? OnlyFaults { get; init; }

    /// <summary>The tasks of the run (<see cref="Workload.ChaosWorkload.FullTasks"/> unless given).</summary>
    public IReadOnlyList<Workload.ChaosTask>? Tasks { get; init; }

    /// <summary>Keep the work folder (witness log, executor logs) even when the run passes.</summary>
    public bool KeepWorkFolder { get; init; }
}
