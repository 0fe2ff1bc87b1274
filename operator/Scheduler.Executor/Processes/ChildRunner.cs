using System.ComponentModel;
using System.Diagnostics;
using Dtask.Executor.Logging;

namespace Dtask.Executor.Processes;

/// <summary>Tuning of a <see cref="ChildRunner"/>.</summary>
public sealed record ChildRunnerOptions
{
    /// <summary>Between SIGTERM and SIGKILL when a group is stopped (timeout, lost lock, replace, shutdown).</summary>
    public TimeSpan TerminationGrace { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How long to wait for the output streams to close after the group is gone.</summary>
    public TimeSpan OutputDrainTimeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Stops the children if their owner dies: each child carries its marker and its group is registered while it runs; none when null.</summary>
    public ChildWatchdog? Watchdog { get; init; }

    /// <summary>How children are put into a process group of their own (<see cref="ChildProcessGroup"/>); the one-exec start whenever it is safe by default.</summary>
    public ChildStartMethod StartMethod { get; init; } = ChildStartMethod.Auto;
}

/// <summary>A child that has just started.</summary>
/// <param name="ProcessGroupId">Its process id, which is also its process group id.</param>
/// <param name="StartedAt">When it started.</param>
public sealed record ChildStart(int ProcessGroupId, DateTimeOffset StartedAt);

/// <summary>
/// Runs one child to its end: resolves the program, starts it in its own process group (<see cref="ChildProcessGroup"/>)
/// with the run's <c>DTASK_*</c> variables, forwards its output line by line, stops the whole group on timeout or on a
/// <see cref="StopRequest"/> (SIGTERM, SIGKILL after the grace period), and reports a <see cref="ChildOutcome"/>.
/// </summary>
/// <remarks>
/// A run ends when its main process exits; processes it left behind in its group are stopped then too (as systemd
/// does for a unit's control group). A program that cannot be started (not found, not executable, a missing working
/// directory) is an outcome with <see cref="ChildOutcome.StartError"/>, never an exception.
/// </remarks>
public sealed class ChildRunner(ChildRunnerOptions? options = null, TimeProvider? time = null)
{
    private readonly ChildRunnerOptions options = options ?? new ChildRunnerOptions();
    private readonly TimeProvider time = time ?? TimeProvider.System;

    /// <summary>Runs <paramref name="command"/> and waits for its end.</summary>
    /// <param name="command">What to run.</param>
    /// <param name="identity">The run's identity, handed to the child as <c>DTASK_*</c> variables.</param>
    /// <param name="output">Forwards stdout and stderr and keeps the tail.</param>
    /// <param name="stop">Stops the child early, with a reason; null when nothing can.</param>
    /// <param name="started">Called once the child runs, with its process group and start instant (for notifications and fire delay).</param>
    /// <param name="lastCheck">Asked right before the fork, after every other preparation: a reason not to start the child now, or null.</param>
    public async Task<ChildOutcome> RunAsync(ChildCommand command, RunIdentity identity, ChildOutputForwarder output,
        StopRequest? stop = null, Action<ChildStart>? started = null, Func<StopReason?>? lastCheck = null)
    {
        ArgumentNullException.ThrowIfNull(command);
        ArgumentNullException.ThrowIfNull(identity);
        ArgumentNullException.ThrowIfNull(output);

        if (stop?.Reason is { } early)
        {
            return NotStarted(output) with { StoppedReason = early };
        }

        if (command.WorkingDirectory is { } dir && !Directory.Exists(dir))
        {
            return NotStarted(output) with { StartError = $"working directory '{dir}' does not exist" };
        }

        var path = command.Environment.TryGetValue("PATH", out var own) ? own : Environment.GetEnvironmentVariable("PATH");
        var program = ExecutableSearch.Resolve(command.Argv[0], path, command.WorkingDirectory, out var problem);
        if (program is null)
        {
            return NotStarted(output) with { StartError = problem };
        }

        var start = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = command.WorkingDirectory ?? "",
        };
        foreach (var argument in command.Argv.Skip(1))
        {
            start.ArgumentList.Add(argument);
        }

        foreach (var (name, value) in command.Environment)
        {
            start.Environment[name] = value;
        }

        foreach (var (name, file) in command.EnvironmentFiles)
        {
            try
            {
                var secret = await File.ReadAllTextAsync(file).ConfigureAwait(false);
                start.Environment[name] = secret.EndsWith("\r\n", StringComparison.Ordinal) ? secret[..^2]
                    : secret.EndsWith('\n') ? secret[..^1] : secret;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
            {
                // The message names the variable and the file, never the content.
                return NotStarted(output) with { StartError = $"env {name}: valueFrom file '{file}' cannot be read: {e.Message}" };
            }
        }

        foreach (var (name, value) in identity.ToVariables())
        {
            start.Environment[name] = value;
        }

        if (options.Watchdog is { } watchdog)
        {
            try
            {
                watchdog.EnsureRunning();
            }
            catch (Win32Exception e)
            {
                return NotStarted(output) with { StartError = $"cannot start the child watchdog: {e.Message}" };
            }

            start.Environment[ChildWatchdog.MarkerVariable] = watchdog.MarkerValue;
        }

        // The last word before the fork: whatever was checked before the preparation above may be stale by now (this
        // process may have been paused in between).
        if ((stop?.Reason ?? lastCheck?.Invoke()) is { } late)
        {
            return NotStarted(output) with { StoppedReason = late };
        }

        ChildProcessGroup group;
        try
        {
            group = await ChildProcessGroup.StartAsync(start, time, options.StartMethod).ConfigureAwait(false);
        }
        catch (Exception e) when (e is Win32Exception or InvalidOperationException)
        {
            return NotStarted(output) with { StartError = $"cannot start '{command.Argv[0]}': {e.Message}" };
        }

        options.Watchdog?.Register(group.GroupId);
        using (group)
        {
            var startedAt = time.GetUtcNow();
            var startedStamp = time.GetTimestamp();
            var forwarding = Task.WhenAll(
                output.ForwardAsync(group.StandardOutput, ChildOutputSource.Stdout),
                output.ForwardAsync(group.StandardError, ChildOutputSource.Stderr));
            started?.Invoke(new ChildStart(group.GroupId, startedAt));

            using var timeout = command.Timeout is { } limit ? new CancellationTokenSource(limit, time) : new CancellationTokenSource();
            using var either = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, stop?.Token ?? CancellationToken.None);
            var timedOut = false;
            StopReason? stoppedReason = null;
            try
            {
                await group.WaitForExitAsync(either.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                if (stop?.Reason is { } why)
                {
                    stoppedReason = why;
                }
                else
                {
                    timedOut = true;
                }

                await group.TerminateAsync(options.TerminationGrace).ConfigureAwait(false);
                await group.WaitForExitAsync().ConfigureAwait(false);
            }

            var duration = time.GetElapsedTime(startedStamp);
            var exitCode = group.ExitCode;

            // Whatever the main process left behind in its group ends with it.
            if (group.HasMembers())
            {
                await group.TerminateAsync(options.TerminationGrace).ConfigureAwait(false);
            }

            options.Watchdog?.Unregister(group.GroupId);
            await Task.WhenAny(forwarding, Task.Delay(options.OutputDrainTimeout, time)).ConfigureAwait(false);
            return new ChildOutcome(startedAt, duration, exitCode, output.Tail.ToString())
            {
                ProcessGroupId = group.GroupId,
                TimedOut = timedOut,
                StoppedReason = stoppedReason,
            };
        }
    }

    private static ChildOutcome NotStarted(ChildOutputForwarder output) => new(null, TimeSpan.Zero, null, output.Tail.ToString());
}
