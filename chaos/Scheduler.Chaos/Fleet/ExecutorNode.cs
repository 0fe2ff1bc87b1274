using System.Diagnostics;
using System.Globalization;
using Dtask.Chaos.Hosts;
using Dtask.Testing;

namespace Dtask.Chaos.Fleet;

/// <summary>
/// One <c>dtask executor</c> process of the chaos fleet, pointed at one Consul server through
/// <c>CONSUL_HTTP_ADDR</c>, its output appended to <c>&lt;node&gt;.log</c>. It can be killed (SIGKILL: its running
/// child is orphaned, as in a real crash), paused and resumed (SIGSTOP/SIGCONT of the executor only: its child keeps
/// running), started again, and stopped with SIGTERM. Like the systemd unit (<c>Restart=always</c>,
/// <c>RestartSec=5s</c>), it starts the executor again <see cref="RestartDelay"/> after it exits by itself (not killed,
/// nor stopped, by the run).
/// </summary>
public sealed class ExecutorNode : IDisposable
{
    private readonly ExecutorLaunch launch;
    private readonly StreamWriter log;
    private bool logClosed;
    private readonly Lock gate = new();
    private Process? process;
    private TaskCompletionSource ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource skewSeen = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private bool supervised = true;
    private bool exitExpected;

    /// <summary>How long after exiting by itself the executor is started again (the systemd unit's <c>RestartSec</c>).</summary>
    public static readonly TimeSpan RestartDelay = TimeSpan.FromSeconds(5);

    /// <summary>Creates the node; <see cref="Start"/> launches it (inside <paramref name="host"/>'s network namespace, through its gateway, when given).</summary>
    public ExecutorNode(string name, Uri consul, ExecutorLaunch launch, string logFile, NodeHost? host = null)
    {
        Host = host;
        ArgumentException.ThrowIfNullOrEmpty(name);
        Name = name;
        Consul = consul ?? throw new ArgumentNullException(nameof(consul));
        this.launch = launch ?? throw new ArgumentNullException(nameof(launch));
        LogFile = logFile;
        log = new StreamWriter(logFile, append: true) { AutoFlush = true };
    }

    /// <summary>The node name (<c>--node</c>).</summary>
    public string Name { get; }

    /// <summary>Its network namespace, gateway and clock; null when it runs in the host's network on the true clock.</summary>
    public NodeHost? Host { get; }

    /// <summary>The Consul server it talks to (through its gateway when it has a <see cref="Host"/>).</summary>
    public Uri Consul { get; }

    /// <summary>Where its output goes.</summary>
    public string LogFile { get; }

    /// <summary>True while its process runs (also while it is paused).</summary>
    public bool IsRunning
    {
        get
        {
            lock (gate)
            {
                return process is { HasExited: false };
            }
        }
    }

    /// <summary>True between <see cref="Pause"/> and <see cref="Resume"/>.</summary>
    public bool IsPaused { get; private set; }

    /// <summary>Starts the executor (again). Does nothing while it runs.</summary>
    public void Start()
    {
        // The exited process is disposed outside the gate (see Dispose).
        Process? exited;
        lock (gate)
        {
            if (process is { HasExited: false })
            {
                return;
            }

            exited = process;
            ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var start = new ProcessStartInfo(Host is null ? launch.DotnetHost : Host.Network.ExecPrefix[0])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            IEnumerable<string> arguments = Host is null ? launch.ArgumentsFor(Name) : [.. Host.Network.ExecPrefix.Skip(1), launch.DotnetHost, .. launch.ArgumentsFor(Name)];
            foreach (var argument in arguments)
            {
                start.ArgumentList.Add(argument);
            }

            start.Environment["CONSUL_HTTP_ADDR"] = (Host?.Gateway.Address ?? Consul).ToString().TrimEnd('/');
            foreach (var (variable, value) in Host?.Clock?.Environment ?? new Dictionary<string, string>())
            {
                start.Environment[variable] = value;
            }

            start.Environment["DTASK_LOG_FORMAT"] = "console";
            foreach (var name in (string[])["CONSUL_HOST", "CONSUL_PORT", "CONSUL_HTTP_TOKEN", "CONSUL_HTTP_TOKEN_FILE", "SLACK_WEBHOOK", "SLACK_WEBHOOK_FILE",
                "NOTIFY_SOCKET", "DD_AGENT_HOST", "DD_API_KEY", "DATADOG_API_KEY", "DTASK_NODE", "DTASK_LABELS"])
            {
                start.Environment.Remove(name);
            }

            var started = new Process { StartInfo = start, EnableRaisingEvents = true };
            started.Exited += (_, _) => Supervise(started);
            exitExpected = false;
            var readiness = ready;
            started.OutputDataReceived += (_, e) => Keep(e.Data, readiness);
            started.ErrorDataReceived += (_, e) => Keep(e.Data, readiness);
            started.Start();
            started.BeginOutputReadLine();
            started.BeginErrorReadLine();
            process = started;
            IsPaused = false;
            Write($"--- chaos: started pid {started.Id.ToString(CultureInfo.InvariantCulture)} against {Consul}{(Host is null ? "" : $" via {Host.Gateway.Address} from {Host.Network}")}{(Host?.Clock is { } clock ? $", clock {clock.Offset.TotalSeconds:+0;-0;0} s" : "")}");
        }

        exited?.Dispose();
    }

    /// <summary>Waits until the executor says it watches its tasks.</summary>
    public async Task WaitReadyAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        Task readiness;
        lock (gate)
        {
            readiness = ready.Task;
        }

        try
        {
            await readiness.WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"executor {Name} was not ready after {timeout.TotalSeconds} s; see {LogFile}", e);
        }
    }

    /// <summary>Waits until the executor has logged that its clock is skewed (its guard holds); false after <paramref name="timeout"/>.</summary>
    public async Task<bool> WaitForSkewGuardAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        try
        {
            await skewSeen.Task.WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    /// <summary>SIGKILL, as a crash: the running child, in its own process group, is orphaned and runs on.</summary>
    public async Task KillAsync()
    {
        Process? running;
        lock (gate)
        {
            running = process;
        }

        if (running is null || running.HasExited)
        {
            return;
        }

        Write("--- chaos: SIGKILL");
        lock (gate)
        {
            exitExpected = true;
        }

        running.Kill(entireProcessTree: false);
        // The exit itself, not the end of its output: the executor's watchdog holds the same stdout and stderr until
        // it has stopped the orphaned children (up to the termination grace and more on a loaded machine).
        await ExitedAsync(running, TimeSpan.FromSeconds(10)).ConfigureAwait(false);
        IsPaused = false;
    }

    /// <summary>SIGSTOP of the executor alone (its child keeps running).</summary>
    public void Pause()
    {
        if (Pid() is { } pid)
        {
            Write("--- chaos: SIGSTOP");
            IsPaused = ProcessSignal.Send(pid, ProcessSignal.Stop);
        }
    }

    /// <summary>The process id, while it runs.</summary>
    public int? ProcessId => Pid();

    /// <summary>SIGCONT.</summary>
    public void Resume()
    {
        if (Pid() is { } pid)
        {
            Write("--- chaos: SIGCONT");
            ProcessSignal.Send(pid, ProcessSignal.Continue);
        }

        IsPaused = false;
    }

    /// <summary>SIGCONT if paused, then SIGTERM (a clean shutdown) and waits up to <paramref name="within"/>; SIGKILL after that.</summary>
    public async Task StopAsync(TimeSpan within)
    {
        Process? running;
        lock (gate)
        {
            running = process;
        }

        lock (gate)
        {
            supervised = false;
        }

        if (running is null || running.HasExited)
        {
            return;
        }

        if (IsPaused)
        {
            Resume();
        }

        Write("--- chaos: SIGTERM");
        ProcessSignal.Send(running.Id, ProcessSignal.Terminate);
        using var timeout = new CancellationTokenSource(within);
        try
        {
            await running.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
            Write($"--- chaos: exited with {running.ExitCode.ToString(CultureInfo.InvariantCulture)}");
        }
        catch (OperationCanceledException)
        {
            Write("--- chaos: did not stop in time; SIGKILL");
            running.Kill(entireProcessTree: true);
            await running.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <summary>An executor that exited by itself is started again after <see cref="RestartDelay"/>, as its supervisor would.</summary>
    private void Supervise(Process exited)
    {
        lock (gate)
        {
            if (!supervised || exitExpected || process != exited)
            {
                return;
            }
        }

        int code;
        try
        {
            code = exited.ExitCode;
        }
        catch (InvalidOperationException)
        {
            return;
        }

        Write($"--- chaos: exited by itself ({code.ToString(CultureInfo.InvariantCulture)}); started again in {RestartDelay.TotalSeconds:0} s, as systemd's Restart=always would");
        _ = Task.Run(async () =>
        {
            await Task.Delay(RestartDelay).ConfigureAwait(false);
            lock (gate)
            {
                if (!supervised || process != exited)
                {
                    return;
                }
            }

            Start();
        });
    }

    private static async Task ExitedAsync(Process process, TimeSpan within)
    {
        var started = Stopwatch.GetTimestamp();
        while (!process.HasExited)
        {
            if (Stopwatch.GetElapsedTime(started) > within)
            {
                throw new TimeoutException($"process {process.Id} did not exit within {within.TotalSeconds:0} s of SIGKILL");
            }

            await Task.Delay(20).ConfigureAwait(false);
        }
    }

    private int? Pid()
    {
        lock (gate)
        {
            return process is { HasExited: false } p ? p.Id : null;
        }
    }

    private void Keep(string? line, TaskCompletionSource readiness)
    {
        if (line is null)
        {
            return;
        }

        Write(line);
        if (line.Contains("clock skew: this clock is", StringComparison.Ordinal))
        {
            skewSeen.TrySetResult();
        }

        if (line.Contains("watching ", StringComparison.Ordinal))
        {
            readiness.TrySetResult();
        }
    }

    private void Write(string line)
    {
        lock (log)
        {
            // Output of a process still being read (an earlier incarnation's, or the last lines after a kill) may come
            // after Dispose: it is dropped, never thrown on the reader's thread.
            if (!logClosed)
            {
                log.WriteLine(line);
            }
        }
    }

    /// <summary>Writes a line about a fault into the node's log.</summary>
    public void Note(string line) => Write("--- chaos: " + line);

    /// <summary>Kills the executor if it still runs (resuming it first, so no stopped process is left behind), then removes its host.</summary>
    public void Dispose()
    {
        // The process is killed and disposed outside the gate: its Exited event is raised under the process's own lock
        // and its handler (Supervise) takes the gate, so holding the gate here while the process is closed deadlocks.
        Process? last;
        lock (gate)
        {
            supervised = false;
            last = process;
            process = null;
        }

        try
        {
            if (last is { HasExited: false } running)
            {
                ProcessSignal.Send(running.Id, ProcessSignal.Continue);
                running.Kill(entireProcessTree: true);
                running.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException)
        {
            // Gone.
        }

        last?.Dispose();

        lock (log)
        {
            logClosed = true;
            log.Dispose();
        }

        Host?.Dispose();
    }

    /// <inheritdoc />
    public override string ToString() => $"{Name} -> {Consul}";
}
