using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Dtask.Consul;
using Dtask.Consul.Configuration;

namespace Dtask.Testing;

/// <summary>
/// One server of a <see cref="ConsulCluster"/>: a <c>consul agent -server</c> process with its own data folder and
/// fixed address and ports, which can be killed (as a crash would), stopped gracefully, and started again with its data.
/// </summary>
public sealed class ConsulClusterServer : IDisposable
{
    private const int LogLinesKept = 300;
    private readonly ConcurrentQueue<string> log = new();
    private readonly IReadOnlyList<string> command;
    private readonly string configFile;
    private readonly string folder;
    private Process? process;

    internal ConsulClusterServer(string name, IReadOnlyList<string> command, string folder, string configFile, string host, int httpPort, int serfLanPort, int serverPort)
    {
        Name = name;
        this.command = command;
        this.folder = folder;
        this.configFile = configFile;
        Host = host;
        Address = new Uri($"http://{host}:{httpPort.ToString(CultureInfo.InvariantCulture)}");
        SerfLanAddress = $"{host}:{serfLanPort.ToString(CultureInfo.InvariantCulture)}";
        RaftAddress = $"{host}:{serverPort.ToString(CultureInfo.InvariantCulture)}";
    }

    /// <summary>Its own address: every port of it (HTTP, Serf, server RPC) is bound there, and its traffic to the other servers comes from there.</summary>
    public string Host { get; }

    /// <summary>Its data folder (Raft log, snapshots, node id): kept when it is stopped or killed and started again.</summary>
    public string DataDirectory => Path.Combine(folder, "data");

    /// <summary>The server's node name (<c>server-1</c>…).</summary>
    public string Name { get; }

    /// <summary>Its HTTP API address.</summary>
    public Uri Address { get; }

    /// <summary>Its Serf LAN address, which the other servers join.</summary>
    public string SerfLanAddress { get; }

    /// <summary>Its server RPC (Raft) address: what <c>/v1/status/leader</c> answers when it leads.</summary>
    public string RaftAddress { get; }

    /// <summary>True while its process runs.</summary>
    public bool IsRunning => Live() is not null;

    /// <summary>The process id while it runs.</summary>
    public int? ProcessId => Live()?.Id;

    /// <summary>The process while it runs: read once, so a restart on another thread (which disposes the old one) cannot make it throw.</summary>
    private Process? Live()
    {
        var current = Volatile.Read(ref process);
        try
        {
            return current is { HasExited: false } ? current : null;
        }
        catch (InvalidOperationException)
        {
            return null; // Disposed by a restart meanwhile.
        }
    }

    /// <summary>The last lines it printed.</summary>
    public string RecentLog => string.Join('\n', log);

    /// <summary>A client of this server with short timeouts and no read retries (a fault should show, not be hidden).</summary>
    public ConsulClient CreateClient(TimeSpan? requestTimeout = null) => new(new ConsulClientOptions
    {
        Address = Address,
        ReadRetries = 0,
        RequestTimeout = requestTimeout ?? TimeSpan.FromSeconds(3),
    });

    /// <summary>Starts the process (again), with the same configuration, data and ports. Does nothing while it runs.</summary>
    public void Start()
    {
        if (IsRunning)
        {
            return;
        }

        var previous = process;
        var start = new ProcessStartInfo(command[0])
        {
            WorkingDirectory = folder,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var word in command.Skip(1))
        {
            start.ArgumentList.Add(word);
        }

        start.ArgumentList.Add("agent");
        start.ArgumentList.Add("-config-file");
        start.ArgumentList.Add(configFile);
        var started = new Process { StartInfo = start, EnableRaisingEvents = true };
        started.OutputDataReceived += (_, e) => Keep(e.Data);
        started.ErrorDataReceived += (_, e) => Keep(e.Data);
        started.Start();
        started.BeginOutputReadLine();
        started.BeginErrorReadLine();
        process = started;
        previous?.Dispose(); // After the new one is in place: a reader never finds a disposed process there.
    }

    /// <summary>Kills the process with SIGKILL (a crash or power loss) and waits for it to be gone; its data stays.</summary>
    public Task KillAsync() => EndAsync(graceful: false);

    /// <summary>Stops the process with SIGTERM (an orderly restart, without leaving the cluster) and waits; its data stays.</summary>
    public Task StopAsync() => EndAsync(graceful: true);

    private async Task EndAsync(bool graceful)
    {
        if (process is not { } running)
        {
            return;
        }

        try
        {
            if (!running.HasExited)
            {
                if (graceful)
                {
                    ProcessSignal.Send(running.Id, ProcessSignal.Terminate);
                }
                else
                {
                    running.Kill(entireProcessTree: true);
                }
            }

            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            await running.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (graceful)
        {
            await EndAsync(graceful: false).ConfigureAwait(false);
        }
        catch (Exception e) when (e is InvalidOperationException or OperationCanceledException)
        {
            // Gone already, or it would not die: nothing more can be done from here.
        }
    }

    private void Keep(string? line)
    {
        if (line is null)
        {
            return;
        }

        log.Enqueue(line);
        while (log.Count > LogLinesKept && log.TryDequeue(out _))
        {
        }
    }

    /// <summary>Kills the process if it still runs.</summary>
    public void Dispose()
    {
        try
        {
            if (process is { HasExited: false } running)
            {
                running.Kill(entireProcessTree: true);
                running.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException)
        {
            // Gone.
        }

        process?.Dispose();
        process = null;
    }

    /// <inheritdoc />
    public override string ToString() => $"{Name} ({Address})";
}
