using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Dtask.Consul;
using Dtask.Consul.Errors;

namespace Dtask.Testing;

/// <summary>A cluster start that failed in a way a fresh start with other ports may cure.</summary>
internal sealed class ClusterStartException(string message) : Exception(message);

/// <summary>
/// Where one server of a <see cref="ConsulCluster"/> runs: the address it binds every port to (and sends from), and the
/// command prefix that starts it there (for example <c>ip netns exec NS</c>, which runs it in network namespace NS).
/// </summary>
/// <param name="Host">The address.</param>
/// <param name="ExecPrefix">The command before <c>consul agent …</c>; empty to run it as it is.</param>
public sealed record ConsulServerPlacement(string Host, IReadOnlyList<string> ExecPrefix);

/// <summary>
/// A real Consul cluster of several servers (three by default): each server has its own data folder, its own address
/// (on loopback <c>127.a.b.1</c>, <c>127.a.b.2</c>… in a /24 drawn for the cluster, or where a
/// <see cref="ConsulServerPlacement"/> puts it, such as a network namespace of its own) and its own ports, starts with <c>-server -bootstrap-expect=N</c> and joins the others with <c>retry_join</c>. Any
/// server can be killed and started again with its data, and the leader can be found, so tests can crash the leader
/// or restart a follower. DNS and gRPC are off. Disposing kills every server and removes the folders.
/// </summary>
public sealed class ConsulCluster : IAsyncDisposable
{
    private readonly DirectoryInfo folder;

    private ConsulCluster(DirectoryInfo folder, IReadOnlyList<ConsulClusterServer> servers)
    {
        this.folder = folder;
        Servers = servers;
    }

    /// <summary>The servers, <c>server-1</c> first.</summary>
    public IReadOnlyList<ConsulClusterServer> Servers { get; }

    /// <summary>How many times a start is tried again with fresh ports when a server could not bind one of its ports.</summary>
    public const int StartAttempts = 3;

    /// <summary>
    /// Starts <paramref name="size"/> servers and waits until they have elected a leader that accepts writes. The ports
    /// are picked free just before the start, so another process may take one in between: when a server's log shows a
    /// failed bind (or a server exits while the cluster forms), the whole cluster is started again with fresh ports, up to
    /// <see cref="StartAttempts"/> times. Any other failure to elect a leader within <paramref name="timeout"/> fails with
    /// the servers' logs.
    /// </summary>
    /// <exception cref="TimeoutException">No leader within <paramref name="timeout"/> (the logs are in the message).</exception>
    /// <exception cref="InvalidOperationException">Every attempt met a port collision.</exception>
    public static Task<ConsulCluster> StartAsync(int size = 3, TimeSpan? timeout = null, CancellationToken cancellationToken = default) =>
        StartAsync(size, null, timeout, cancellationToken);

    /// <summary>
    /// Starts <paramref name="size"/> servers as <see cref="StartAsync(int, TimeSpan?, CancellationToken)"/> does, server
    /// <c>i</c> (from 0) where <paramref name="placement"/> puts it; on loopback addresses of the cluster's own when it is null.
    /// </summary>
    public static async Task<ConsulCluster> StartAsync(int size, Func<int, ConsulServerPlacement>? placement, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(size, 1);
        ClusterStartException? last = null;
        for (var attempt = 0; attempt < StartAttempts; attempt++)
        {
            try
            {
                return await StartOnceAsync(size, placement, timeout ?? TimeSpan.FromSeconds(60), cancellationToken).ConfigureAwait(false);
            }
            catch (ClusterStartException e)
            {
                last = e;
            }
        }

        throw new InvalidOperationException($"the Consul cluster did not start after {StartAttempts} attempts: {last?.Message}", last);
    }

    private static async Task<ConsulCluster> StartOnceAsync(int size, Func<int, ConsulServerPlacement>? placement, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var binary = ConsulBinary.Locate();
        var folder = Directory.CreateTempSubdirectory("dtask-consul-cluster-");
        var servers = new List<ConsulClusterServer>();
        var cluster = new ConsulCluster(folder, servers);
        try
        {
            var ports = FreePorts(size * 4);
            var network = $"127.{Random.Shared.Next(1, 255).ToString(CultureInfo.InvariantCulture)}.{Random.Shared.Next(0, 256).ToString(CultureInfo.InvariantCulture)}.";
            var placements = Enumerable.Range(0, size)
                .Select(i => placement?.Invoke(i) ?? new ConsulServerPlacement(network + (i + 1).ToString(CultureInfo.InvariantCulture), []))
                .ToList();
            string Host(int i) => placements[i].Host;
            string SerfLan(int i) => Host(i) + ":" + ports[(i * 4) + 1].ToString(CultureInfo.InvariantCulture);
            for (var i = 0; i < size; i++)
            {
                var name = "server-" + (i + 1).ToString(CultureInfo.InvariantCulture);
                var home = folder.CreateSubdirectory(name).FullName;
                var config = new JsonObject
                {
                    ["node_name"] = name,
                    ["server"] = true,
                    ["bootstrap_expect"] = size,
                    ["data_dir"] = Path.Combine(home, "data"),
                    ["bind_addr"] = Host(i),
                    ["client_addr"] = Host(i),
                    ["advertise_addr"] = Host(i),
                    ["disable_update_check"] = true,
                    ["log_level"] = "info",
                    ["leave_on_terminate"] = false,
                    ["skip_leave_on_interrupt"] = true,
                    // Production timings scaled down as in dev mode: elections in about a second.
                    ["performance"] = new JsonObject { ["raft_multiplier"] = 1 },
                    ["retry_join"] = new JsonArray([.. Enumerable.Range(0, size).Where(j => j != i).Select(j => (JsonNode)JsonValue.Create(SerfLan(j)))]),
                    ["retry_interval"] = "1s",
                    ["ports"] = new JsonObject
                    {
                        ["http"] = ports[i * 4],
                        ["serf_lan"] = ports[(i * 4) + 1],
                        ["serf_wan"] = ports[(i * 4) + 2],
                        ["server"] = ports[(i * 4) + 3],
                        ["dns"] = -1,
                        ["grpc"] = -1,
                    },
                };
                var configFile = Path.Combine(home, "agent.json");
                await File.WriteAllTextAsync(configFile, config.ToJsonString(), cancellationToken).ConfigureAwait(false);
                servers.Add(new ConsulClusterServer(name, [.. placements[i].ExecPrefix, binary], home, configFile, Host(i), ports[i * 4], ports[(i * 4) + 1], ports[(i * 4) + 3]));
            }

            foreach (var server in servers)
            {
                server.Start();
            }

            await cluster.WaitForFirstLeaderAsync(timeout, cancellationToken).ConfigureAwait(false);
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// The current leader as seen by the running servers, or null when there is none (an election is going on) or
    /// the running servers disagree.
    /// </summary>
    public async Task<ConsulClusterServer?> FindLeaderAsync(CancellationToken cancellationToken = default)
    {
        string? seen = null;
        foreach (var server in Servers.Where(s => s.IsRunning))
        {
            using var client = server.CreateClient(TimeSpan.FromSeconds(2));
            string leader;
            try
            {
                leader = (await client.Status.LeaderAsync(cancellationToken).ConfigureAwait(false)).Value;
            }
            catch (ConsulException)
            {
                return null;
            }

            if (leader.Length == 0 || (seen is not null && seen != leader))
            {
                return null;
            }

            seen = leader;
        }

        return seen is null ? null : Servers.FirstOrDefault(s => s.RaftAddress == seen && s.IsRunning);
    }

    /// <summary>
    /// Waits until every running server names the same running leader and a KV write through each running server
    /// commits; returns that leader.
    /// </summary>
    /// <exception cref="TimeoutException">No such leader within <paramref name="timeout"/>.</exception>
    public async Task<ConsulClusterServer> WaitForLeaderAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var elapsed = Stopwatch.StartNew();
        while (elapsed.Elapsed < timeout)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (await FindLeaderAsync(cancellationToken).ConfigureAwait(false) is { } leader && await AllWriteAsync(cancellationToken).ConfigureAwait(false))
            {
                return leader;
            }

            await Task.Delay(200, cancellationToken).ConfigureAwait(false);
        }

        var logs = string.Join("\n", Servers.Select(s => $"--- {s.Name} (running: {s.IsRunning})\n{s.RecentLog}"));
        throw new TimeoutException($"the Consul cluster has no leader after {timeout.TotalSeconds} s:\n{logs}");
    }

    /// <summary>
    /// <see cref="WaitForLeaderAsync"/> for a cluster just started: gives up at once with
    /// <see cref="ClusterStartException"/> when a server could not bind a port or exited, instead of waiting out the timeout.
    /// </summary>
    private async Task WaitForFirstLeaderAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        var elapsed = Stopwatch.StartNew();
        while (elapsed.Elapsed < timeout)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (Servers.FirstOrDefault(s => BindFailed(s.RecentLog) || !s.IsRunning) is { } failed)
            {
                throw new ClusterStartException($"{failed.Name} {(failed.IsRunning ? "could not bind a port" : "exited")} while the cluster formed:\n{failed.RecentLog}");
            }

            if (await FindLeaderAsync(cancellationToken).ConfigureAwait(false) is not null && await AllWriteAsync(cancellationToken).ConfigureAwait(false))
            {
                return;
            }

            await Task.Delay(200, cancellationToken).ConfigureAwait(false);
        }

        var logs = string.Join("\n", Servers.Select(s => $"--- {s.Name} (running: {s.IsRunning})\n{s.RecentLog}"));
        throw new TimeoutException($"the Consul cluster has no leader after {timeout.TotalSeconds} s:\n{logs}");
    }

    /// <summary>True when a server's log shows that one of its ports was taken.</summary>
    internal static bool BindFailed(string log) =>
        log.Contains("address already in use", StringComparison.OrdinalIgnoreCase)
        || (log.Contains("Failed to start Consul server", StringComparison.Ordinal) && log.Contains("bind", StringComparison.OrdinalIgnoreCase));

    /// <summary>
    /// Waits until Consul's autopilot, asked through the leader, says the cluster is healthy and can lose a server
    /// (<c>FailureTolerance</c> ≥ 1: every server has been stable for autopilot's stabilization time); false when it does
    /// not within <paramref name="timeout"/>.
    /// </summary>
    public async Task<bool> WaitForFailureToleranceAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var elapsed = Stopwatch.StartNew();
        while (elapsed.Elapsed < timeout)
        {
            if (await FindLeaderAsync(cancellationToken).ConfigureAwait(false) is { } leader)
            {
                using var http = new HttpClient { BaseAddress = leader.Address, Timeout = TimeSpan.FromSeconds(2) };
                try
                {
                    using var health = System.Text.Json.JsonDocument.Parse(await http.GetStringAsync("v1/operator/autopilot/health", cancellationToken).ConfigureAwait(false));
                    if (health.RootElement.GetProperty("Healthy").GetBoolean() && health.RootElement.GetProperty("FailureTolerance").GetInt32() >= 1)
                    {
                        return true;
                    }
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException { CancellationToken.IsCancellationRequested: false }
                    or System.Text.Json.JsonException or KeyNotFoundException or InvalidOperationException)
                {
                    // Not answering yet (an election, a restart): ask again.
                }
            }

            await Task.Delay(250, cancellationToken).ConfigureAwait(false);
        }

        return false;
    }

    private async Task<bool> AllWriteAsync(CancellationToken cancellationToken)
    {
        foreach (var server in Servers.Where(s => s.IsRunning))
        {
            using var client = server.CreateClient(TimeSpan.FromSeconds(2));
            try
            {
                if (!(await client.Kv.PutStringAsync("cluster-probe/" + server.Name, DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture),
                    cancellationToken: cancellationToken).ConfigureAwait(false)).Value)
                {
                    return false;
                }
            }
            catch (ConsulException)
            {
                return false;
            }
        }

        return true;
    }

    private static List<int> FreePorts(int count)
    {
        var listeners = new List<TcpListener>();
        try
        {
            var ports = new List<int>();
            for (var attempt = 0; ports.Count < count && attempt < count * 20; attempt++)
            {
                var listener = new TcpListener(IPAddress.Loopback, 0);
                listener.Start();
                listeners.Add(listener);
                var port = ((IPEndPoint)listener.LocalEndpoint).Port;
                if (IsUdpFree(port))
                {
                    ports.Add(port);
                }
            }

            return ports.Count == count ? ports : throw new InvalidOperationException($"could not find {count} free loopback ports");
        }
        finally
        {
            foreach (var listener in listeners)
            {
                listener.Stop();
                listener.Dispose();
            }
        }
    }

    private static bool IsUdpFree(int port)
    {
        try
        {
            using var udp = new UdpClient(new IPEndPoint(IPAddress.Loopback, port));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>Kills every server and removes the cluster's folder.</summary>
    public ValueTask DisposeAsync()
    {
        foreach (var server in Servers)
        {
            server.Dispose();
        }

        try
        {
            folder.Delete(recursive: true);
        }
        catch (IOException)
        {
            // A temp folder left behind is harmless.
        }

        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public override string ToString() => $"Consul cluster of {Servers.Count} servers ({string.Join(", ", Servers.Select(s => s.Address))})";
}
