using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Dtask.Consul;
using Dtask.Consul.Configuration;
using Dtask.Consul.Errors;
using Dtask.Testing;

namespace Dtask.Bench.Consul;

/// <summary>
/// A Consul dev agent on free loopback ports whose telemetry is kept for Prometheus scrapes (cumulative counters), so
/// that <see cref="AgentMetrics"/> can read what every client made the agent do. Disposing kills it and removes its folder.
/// </summary>
internal sealed class MeasuredAgent : IAsyncDisposable
{
    private readonly Process process;
    private readonly DirectoryInfo folder;

    private MeasuredAgent(Process process, DirectoryInfo folder, Uri address, string binary)
    {
        this.process = process;
        this.folder = folder;
        Address = address;
        Binary = binary;
    }

    /// <summary>
    /// The agent's limit of HTTP connections from one client address (Consul's default is 200): every client here
    /// connects from 127.0.0.1. As high as the open-file limit the agent inherits allows (Consul refuses to start with a
    /// limit it cannot serve), at most 100,000.
    /// </summary>
    public static int HttpConnectionLimit { get; } = (int)Math.Clamp((long)Processes.OpenFileLimit.Raise(262_144) - 1_000, 1_000, 100_000);

    /// <summary>The HTTP address.</summary>
    public Uri Address { get; }

    /// <summary><c>127.0.0.1:port</c>, as the <c>consul</c> command line takes it.</summary>
    public string HostPort => $"{Address.Host}:{Address.Port.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>The consul executable this agent runs (the baselines run the same one).</summary>
    public string Binary { get; }

    /// <summary>The agent's process id, for CPU and memory samples.</summary>
    public int ProcessId => process.Id;

    /// <summary>Client options for this agent.</summary>
    public ConsulClientOptions ClientOptions => new() { Address = Address };

    /// <summary>The version the binary reports (first line of <c>consul version</c>).</summary>
    public static async Task<string> VersionAsync(CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(ConsulBinary.Locate(), "version") { RedirectStandardOutput = true, UseShellExecute = false };
        using var version = Process.Start(start) ?? throw new InvalidOperationException("cannot run consul version");
        var text = await version.StandardOutput.ReadToEndAsync(cancellationToken);
        await version.WaitForExitAsync(cancellationToken);
        return text.Split('\n', 2)[0].Trim();
    }

    /// <summary>
    /// <c>BENCH_CONSUL_LOG=FOLDER</c>: each agent logs at debug level into <c>FOLDER/agent-N.log</c>, one line per HTTP
    /// request (<c>Request finished: method=GET url=/v1/kv/…</c>), the profile of what each client asks.
    /// </summary>
    public const string RequestLogVariable = "BENCH_CONSUL_LOG";

    private static int started;

    /// <summary>The agent's HTTP requests by kind (from its debug log), when it was started with a tally; otherwise null.</summary>
    public RequestTally? Requests { get; private init; }

    /// <summary>Starts an agent and waits until it is its own leader; with <paramref name="tally"/>, it logs every HTTP
    /// request and <see cref="Requests"/> counts them by kind.</summary>
    public static async Task<MeasuredAgent> StartAsync(CancellationToken cancellationToken, bool tally = false)
    {
        var binary = ConsulBinary.Locate();
        var requestLog = Environment.GetEnvironmentVariable(RequestLogVariable) is { Length: > 0 } logFolder
            ? Path.Combine(Directory.CreateDirectory(logFolder).FullName, $"agent-{Interlocked.Increment(ref started).ToString(CultureInfo.InvariantCulture)}.log")
            : null;
        var folder = Directory.CreateTempSubdirectory("dtask-bench-consul-");
        var ports = FreePorts(4);
        var config = new JsonObject
        {
            ["node_name"] = "dtask-bench",
            ["bind_addr"] = "127.0.0.1",
            ["client_addr"] = "127.0.0.1",
            ["advertise_addr"] = "127.0.0.1",
            ["disable_update_check"] = true,
            ["log_level"] = requestLog is null && !tally ? "warn" : "debug",
            // Every client here comes from 127.0.0.1, which Consul counts as one client (default limit 200 connections).
            ["limits"] = new JsonObject { ["http_max_conns_per_client"] = HttpConnectionLimit },
            ["telemetry"] = new JsonObject { ["prometheus_retention_time"] = "2h", ["disable_hostname"] = true },
            ["ports"] = new JsonObject
            {
                ["http"] = ports[0], ["serf_lan"] = ports[1], ["serf_wan"] = ports[2], ["server"] = ports[3], ["dns"] = -1, ["grpc"] = -1,
            },
        };
        var configFile = Path.Combine(folder.FullName, "agent.json");
        await File.WriteAllTextAsync(configFile, config.ToJsonString(), cancellationToken);
        var start = new ProcessStartInfo(binary)
        {
            WorkingDirectory = folder.FullName,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[] { "agent", "-dev", "-config-file", configFile })
        {
            start.ArgumentList.Add(argument);
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException("cannot start consul");
        var log = requestLog is null ? null : new StreamWriter(requestLog) { AutoFlush = true };
        var requests = tally ? new RequestTally() : null;
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not { } line)
            {
                return;
            }

            requests?.Read(line);
            if (log is not null)
            {
                lock (log)
                {
                    log.WriteLine(line);
                }
            }
        };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var agent = new MeasuredAgent(process, folder, new Uri($"http://127.0.0.1:{ports[0].ToString(CultureInfo.InvariantCulture)}"), binary) { Requests = requests };
        try
        {
            await agent.WaitForLeaderAsync(cancellationToken);
            return agent;
        }
        catch
        {
            await agent.DisposeAsync();
            throw;
        }
    }

    private async Task WaitForLeaderAsync(CancellationToken cancellationToken)
    {
        using var client = new ConsulClient(ClientOptions with { ReadRetries = 0, RequestTimeout = TimeSpan.FromSeconds(2) });
        for (var attempt = 0; attempt < 300; attempt++)
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"consul exited with code {process.ExitCode}");
            }

            try
            {
                if ((await client.Status.LeaderAsync(cancellationToken)).Value.Length > 0)
                {
                    return;
                }
            }
            catch (ConsulException)
            {
                // Not listening yet.
            }

            await Task.Delay(100, cancellationToken);
        }

        throw new InvalidOperationException("consul has no leader after 30 s");
    }

    private static List<int> FreePorts(int count)
    {
        var listeners = new List<TcpListener>();
        try
        {
            while (listeners.Count < count)
            {
                var listener = new TcpListener(IPAddress.Loopback, 0);
                listener.Start();
                listeners.Add(listener);
            }

            return [.. listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port)];
        }
        finally
        {
            foreach (var listener in listeners)
            {
                listener.Dispose();
            }
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }

            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (Exception e) when (e is InvalidOperationException or OperationCanceledException)
        {
            // Already gone.
        }

        process.Dispose();
        try
        {
            folder.Delete(recursive: true);
        }
        catch (IOException)
        {
            // A temp folder left behind is harmless.
        }
    }
}
