using Dtask.Core.State;

namespace Dtask.Executor.Processes;

/// <summary>How a child process ended.</summary>
/// <param name="StartedAt">When the child started; null when it could not start.</param>
/// <param name="Duration">From the start to the end of the main process (zero when it never started).</param>
/// <param name="ExitCode">
/// The exit status as a shell reports it: the code the child passed to <c>exit</c>, or 128 + the signal number when a
/// signal killed it; null when it never started.
/// </param>
/// <param name="OutputTail">The last bytes of its combined stdout and stderr.</param>
public sealed record ChildOutcome(DateTimeOffset? StartedAt, TimeSpan Duration, int? ExitCode, string OutputTail)
{
    /// <summary>The child's process (and process group) id; null when it never started.</summary>
    public int? ProcessGroupId { get; init; }

    /// <summary>True when the timeout stopped it.</summary>
    public bool TimedOut { get; init; }

    /// <summary>Why it was stopped on request (lock lost, replace, shutdown), or null.</summary>
    public StopReason? StoppedReason { get; init; }

    /// <summary>Why it could not start (<c>no such executable: …</c>, <c>working directory … does not exist</c>), or null.</summary>
    public string? StartError { get; init; }

    /// <summary>The signal that ended it (from an exit status above 128), or null.</summary>
    public int? Signal => ExitCode is > 128 and < 128 + 65 ? ExitCode - 128 : null;

    /// <summary>True when it never started.</summary>
    public bool NeverStarted => StartedAt is null;

    /// <summary>True when it exited by itself with code 0.</summary>
    public bool Succeeded => ExitCode == 0 && !TimedOut && StoppedReason is null && StartError is null;

    /// <summary>
    /// The run state this outcome records: <see cref="RunState.Lost"/> when stopped on request (the caller records
    /// another state when the stop was not a lost lock), <see cref="RunState.TimedOut"/>,
    /// <see cref="RunState.Succeeded"/>, or <see cref="RunState.Failed"/> (non-zero exit, killed, or not started).
    /// </summary>
    public RunState State => StoppedReason is not null ? RunState.Lost
        : TimedOut ? RunState.TimedOut
        : Succeeded ? RunState.Succeeded
        : RunState.Failed;

    /// <summary>The short reason written into the run record; null for a success.</summary>
    public string? Reason => StartError is { } start ? "start-failed: " + start
        : StoppedReason is { } stopped ? stopped.Text
        : TimedOut ? "timeout"
        : Signal is { } signal ? $"signal-{signal}"
        : ExitCode == 0 ? null
        : $"exit-code-{ExitCode}";
}
