using System.Diagnostics;
using Dtask.Bench.Processes;

namespace Dtask.Bench.Executors;

/// <summary>
/// <c>dtask executor</c> in its own process (<c>dotnet dtask.dll executor ...</c>), logging compact JSON to stdout
/// (read into an <see cref="ExecutorLog"/>) and notifying READY on a <see cref="ReadyListener"/>. Disposing sends
/// SIGTERM (a clean leave), and kills the process tree when it has not exited within a few seconds.
/// </summary>
internal sealed class ExecutorProcess : IRunningExecutor
{
    private readonly Process process;
    private readonly ReadyListener ready;
    private readonly long startedAt;

    private ExecutorProcess(string node, Process process, ReadyListener ready, long startedAt)
    {
        Node = node;
        this.process = process;
        this.ready = ready;
        this.startedAt = startedAt;
    }

    /// <inheritdoc />
    public string Node { get; }

    /// <inheritdoc />
    public int? ProcessId => process.HasExited ? null : process.Id;

    /// <summary>Starts an executor.</summary>
    /// <param name="dtask">The path of <c>dtask.dll</c>.</param>
    /// <param name="node">Its node name.</param>
    /// <param name="prefix">The KV prefix.</param>
    /// <param name="consul">The agent's <c>host:port</c>.</param>
    /// <param name="log">Where its fire delays and problems go.</param>
    public static ExecutorProcess Start(string dtask, string node, string prefix, string consul, ExecutorLog log)
    {
        ArgumentNullException.ThrowIfNull(log);
        var ready = new ReadyListener();
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[] { dtask, "executor", "--node", node, "--prefix", prefix, "--consul", consul, "--shutdown-grace", "5s" })
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["DTASK_LOG_FORMAT"] = "json";
        start.Environment["NOTIFY_SOCKET"] = ready.Path;
        start.Environment["LC_ALL"] = "C";
        start.Environment["DOTNET_gcServer"] = "0";
        foreach (var variable in new[] { "SLACK_WEBHOOK", "DATADOG_API_KEY", "DD_API_KEY", "DD_AGENT_HOST", "CONSUL_HTTP_TOKEN", "CONSUL_HTTP_ADDR" })
        {
            start.Environment.Remove(variable);
        }

        var process = new Process { StartInfo = start };
        // BENCH_EXECUTOR_LOGS=<folder> keeps every executor's log lines in <folder>/<node>.log, for diagnosis.
        var copy = Environment.GetEnvironmentVariable("BENCH_EXECUTOR_LOGS") is { Length: > 0 } folder
            ? TextWriter.Synchronized(new StreamWriter(Path.Combine(Directory.CreateDirectory(folder).FullName, node + ".log"), append: true))
            : null;
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is { } line)
            {
                log.ReadJsonLine(node, line);
                copy?.WriteLine(line);
            }
            else
            {
                copy?.Dispose();
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (!string.IsNullOrWhiteSpace(e.Data))
            {
                log.Problem(node, e.Data);
            }
        };
        var startedAt = Stopwatch.GetTimestamp();
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return new ExecutorProcess(node, process, ready, startedAt);
    }

    /// <summary>Waits for READY=1; returns the time from process start to READY, or throws when it does not come.</summary>
    public async Task<TimeSpan> WaitReadyAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        var at = await ready.WaitReadyAsync(timeout, cancellationToken);
        if (at is null)
        {
            throw new InvalidOperationException(process.HasExited
                ? $"executor {Node} exited with code {process.ExitCode} before READY"
                : $"executor {Node} sent no READY=1 within {timeout.TotalSeconds} s");
        }

        return Stopwatch.GetElapsedTime(startedAt, at.Value);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!process.HasExited)
            {
                Signals.Send(process.Id, Signals.Terminate);
                using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(15));
                try
                {
                    await process.WaitForExitAsync(grace.Token);
                }
                catch (OperationCanceledException)
                {
                    process.Kill(entireProcessTree: true);
                    using var kill = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                    await process.WaitForExitAsync(kill.Token);
                }
            }
        }
        catch (Exception e) when (e is InvalidOperationException or OperationCanceledException)
        {
            // Gone.
        }

        process.Dispose();
        ready.Dispose();
    }
}
