using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Nodes;
using Dtask.Consul;
using Dtask.Consul.Configuration;
using Dtask.Consul.Errors;

namespace Dtask.Testing;

/// <summary>
/// A real Consul agent on free loopback ports, for integration tests: in dev mode (a single in-memory server) by
/// default, or a server with a data folder on disk (<see cref="ConsulAgentOptions.PersistentServer"/>) that can be
/// stopped and restarted with its data on the same ports. DNS and gRPC are off. Optionally with ACLs (default deny, a
/// known master token) and HTTPS (a fresh CA made with <c>consul tls</c>). Disposing kills it and removes its folder.
/// </summary>
public sealed class ConsulAgent : IAsyncDisposable
{
    private const int LogLinesKept = 200;
    private readonly ConcurrentQueue<string> log;
    private readonly DirectoryInfo folder;
    private Process process;

    private ConsulAgent(Process process, ConcurrentQueue<string> log, DirectoryInfo folder, Uri address,
        ConsulToken? masterToken, string? caFile, string? clientCertFile, string? clientKeyFile)
    {
        this.process = process;
        this.log = log;
        this.folder = folder;
        Address = address;
        MasterToken = masterToken;
        CaFile = caFile;
        ClientCertificateFile = clientCertFile;
        ClientKeyFile = clientKeyFile;
    }

    /// <summary>The agent's HTTP or HTTPS address.</summary>
    public Uri Address { get; }

    /// <summary>The ACL master token, for ACL agents.</summary>
    public ConsulToken? MasterToken { get; }

    /// <summary>The CA that signed the agent's certificate, for TLS agents.</summary>
    public string? CaFile { get; }

    /// <summary>A client certificate signed by that CA, for TLS agents.</summary>
    public string? ClientCertificateFile { get; }

    /// <summary>The key of <see cref="ClientCertificateFile"/>.</summary>
    public string? ClientKeyFile { get; }

    /// <summary>The agent's Serf LAN address (<c>127.0.0.1:port</c>), for other agents to join.</summary>
    public string SerfLanAddress { get; private set; } = "";

    /// <summary>True while the agent's process runs.</summary>
    public bool IsRunning => !process.HasExited;

    /// <summary>The last lines the agent printed.</summary>
    public string RecentLog => string.Join('\n', log);

    /// <summary>
    /// Options for a client of this agent: its address, the CA file and the client certificate when it has
    /// them, and <paramref name="token"/> (none by default, not even the master token).
    /// </summary>
    public ConsulClientOptions ClientOptions(ConsulToken? token = null) => new()
    {
        Address = Address,
        Token = token,
        CaCertificateFile = CaFile,
        ClientCertificateFile = ClientCertificateFile,
        ClientKeyFile = ClientKeyFile,
    };

    /// <summary>A client of this agent; see <see cref="ClientOptions"/>.</summary>
    public ConsulClient CreateClient(ConsulToken? token = null) => new(ClientOptions(token));

    /// <summary>A client that sends the master token.</summary>
    public ConsulClient CreateMasterClient() => new(ClientOptions(MasterToken ?? throw new InvalidOperationException("this agent has no ACLs")));

    /// <summary>Starts an agent and waits until it has elected itself leader.</summary>
    public static async Task<ConsulAgent> StartAsync(ConsulAgentOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= ConsulAgentOptions.Dev;
        var binary = ConsulBinary.Locate();
        Exception? last = null;
        for (var attempt = 0; attempt < 3; attempt++)
        {
            var folder = Directory.CreateTempSubdirectory("dtask-consul-");
            try
            {
                return await StartOnceAsync(binary, folder, options, cancellationToken).ConfigureAwait(false);
            }
            catch (AgentStartException e)
            {
                // Most often a port taken between choosing it and binding it: try again with new ports.
                last = e;
                folder.Delete(recursive: true);
            }
        }
        throw new InvalidOperationException($"the Consul dev agent did not start after 3 attempts: {last?.Message}", last);
    }

    private static async Task<ConsulAgent> StartOnceAsync(string binary, DirectoryInfo folder, ConsulAgentOptions options, CancellationToken cancellationToken)
    {
        var ports = FreePorts(5);
        var tls = options.Transport != AgentTransport.Http;
        var config = new JsonObject
        {
            ["node_name"] = "dtask-test-" + Guid.NewGuid().ToString("N")[..8],
            ["bind_addr"] = "127.0.0.1",
            ["client_addr"] = "127.0.0.1",
            ["advertise_addr"] = "127.0.0.1",
            ["disable_update_check"] = true,
            ["log_level"] = "info",
            // Dev agents tune Raft for speed; a persistent server gets the same (elections in well under a second).
            ["performance"] = new JsonObject { ["raft_multiplier"] = 1 },
            ["ports"] = new JsonObject
            {
                ["http"] = tls ? -1 : ports[0],
                ["https"] = tls ? ports[0] : -1,
                ["serf_lan"] = ports[1],
                ["serf_wan"] = ports[2],
                ["server"] = ports[3],
                ["dns"] = -1,
                ["grpc"] = -1,
            },
        };
        if (options.PersistentServer && options.RetryJoin.Count > 0)
        {
            config["retry_join"] = new JsonArray([.. options.RetryJoin.Select(a => (JsonNode)JsonValue.Create(a))]);
        }

        ConsulToken? master = null;
        if (options.AclMasterToken is { } token)
        {
            master = new ConsulToken(token);
            config["acl"] = new JsonObject
            {
                ["enabled"] = true,
                ["default_policy"] = "deny",
                ["enable_token_persistence"] = false,
                ["tokens"] = new JsonObject { ["master"] = token, ["agent"] = token },
            };
        }
        string? ca = null, clientCert = null, clientKey = null;
        if (tls)
        {
            var tlsFolder = folder.CreateSubdirectory("tls").FullName;
            await RunToolAsync(binary, tlsFolder, cancellationToken, "tls", "ca", "create").ConfigureAwait(false);
            await RunToolAsync(binary, tlsFolder, cancellationToken, "tls", "cert", "create", "-server").ConfigureAwait(false);
            await RunToolAsync(binary, tlsFolder, cancellationToken, "tls", "cert", "create", "-client").ConfigureAwait(false);
            ca = Path.Combine(tlsFolder, "consul-agent-ca.pem");
            clientCert = Path.Combine(tlsFolder, "dc1-client-consul-0.pem");
            clientKey = Path.Combine(tlsFolder, "dc1-client-consul-0-key.pem");
            config["ca_file"] = ca;
            config["cert_file"] = Path.Combine(tlsFolder, "dc1-server-consul-0.pem");
            config["key_file"] = Path.Combine(tlsFolder, "dc1-server-consul-0-key.pem");
            config["verify_incoming"] = options.Transport == AgentTransport.MutualTls;
            config["verify_outgoing"] = false;
        }
        var configFile = Path.Combine(folder.FullName, "agent.json");
        await File.WriteAllTextAsync(configFile, config.ToJsonString(), cancellationToken).ConfigureAwait(false);

        var log = new ConcurrentQueue<string>();
        var process = Launch(binary, folder, configFile, options, log);

        var address = new Uri($"{(tls ? "https" : "http")}://127.0.0.1:{ports[0].ToString(CultureInfo.InvariantCulture)}");
        var agent = new ConsulAgent(process, log, folder, address, master, ca, clientCert, clientKey)
        {
            SerfLanAddress = $"127.0.0.1:{ports[1].ToString(CultureInfo.InvariantCulture)}",
            binaryPath = binary,
            configPath = configFile,
            startOptions = options,
        };
        try
        {
            await agent.WaitForLeaderAsync(options.StartTimeout, cancellationToken).ConfigureAwait(false);
            return agent;
        }
        catch
        {
            await agent.StopProcessAsync().ConfigureAwait(false);
            throw;
        }
    }

    private string binaryPath = "";
    private string configPath = "";
    private ConsulAgentOptions startOptions = ConsulAgentOptions.Dev;

    /// <summary>
    /// Kills the agent's process (as a crash or a power loss would) and keeps its folder. A dev agent loses its state;
    /// a <see cref="ConsulAgentOptions.PersistentServer"/> keeps it on disk for <see cref="RestartAsync"/>.
    /// </summary>
    public async Task StopAsync()
    {
        try
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }

            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is InvalidOperationException or OperationCanceledException)
        {
            // Already gone.
        }
    }

    /// <summary>Starts the agent again with the same configuration, folder and ports, and waits for a leader.</summary>
    public async Task RestartAsync(CancellationToken cancellationToken = default)
    {
        await StopAsync().ConfigureAwait(false);
        process.Dispose();
        process = Launch(binaryPath, folder, configPath, startOptions, log);
        await WaitForLeaderAsync(startOptions.StartTimeout, cancellationToken).ConfigureAwait(false);
    }

    private static Process Launch(string binary, DirectoryInfo folder, string configFile, ConsulAgentOptions options, ConcurrentQueue<string> log)
    {
        var start = new ProcessStartInfo(binary)
        {
            WorkingDirectory = folder.FullName,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add("agent");
        if (options.PersistentServer)
        {
            start.ArgumentList.Add("-server");
            start.ArgumentList.Add("-bootstrap-expect=" + options.BootstrapExpect.ToString(CultureInfo.InvariantCulture));
            start.ArgumentList.Add("-data-dir=" + Path.Combine(folder.FullName, "data"));
        }
        else
        {
            start.ArgumentList.Add("-dev");
        }

        start.ArgumentList.Add("-config-file");
        start.ArgumentList.Add(configFile);
        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        DataReceivedEventHandler keep = (_, e) =>
        {
            if (e.Data is { } line)
            {
                log.Enqueue(line);
                while (log.Count > LogLinesKept && log.TryDequeue(out string? _))
                {
                }
            }
        };
        process.OutputDataReceived += keep;
        process.ErrorDataReceived += keep;
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private async Task WaitForLeaderAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var client = new ConsulClient(ClientOptions(MasterToken) with { ReadRetries = 0, RequestTimeout = TimeSpan.FromSeconds(2) });
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (process.HasExited)
            {
                throw new AgentStartException($"consul agent exited with code {process.ExitCode}:\n{RecentLog}");
            }
            try
            {
                if ((await client.Status.LeaderAsync(cancellationToken).ConfigureAwait(false)).Value.Length > 0)
                {
                    return;
                }
            }
            catch (ConsulException) when (deadline.Elapsed < timeout)
            {
                // Not listening yet.
            }
            catch (ConsulException e)
            {
                throw new AgentStartException($"consul agent at {Address} has no leader after {timeout.TotalSeconds} s: {e.Message}\n{RecentLog}");
            }
            if (deadline.Elapsed > timeout)
            {
                throw new AgentStartException($"consul agent at {Address} has no leader after {timeout.TotalSeconds} s:\n{RecentLog}");
            }
            await Task.Delay(100, cancellationToken).ConfigureAwait(false);
        }
    }

    private static async Task RunToolAsync(string binary, string workingDirectory, CancellationToken cancellationToken, params string[] arguments)
    {
        var start = new ProcessStartInfo(binary)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        using var process = Process.Start(start) ?? throw new InvalidOperationException("cannot start " + binary);
        var output = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var errors = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"consul {string.Join(' ', arguments)} failed ({process.ExitCode}): {await output.ConfigureAwait(false)}{await errors.ConfigureAwait(false)}");
        }
    }

    private static List<int> FreePorts(int count)
    {
        var listeners = new List<TcpListener>();
        try
        {
            var ports = new List<int>();
            while (ports.Count < count)
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
            return ports;
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

    private async Task StopProcessAsync()
    {
        try
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is InvalidOperationException or OperationCanceledException)
        {
            // Already gone, or it would not die: nothing more to do from here.
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

    /// <summary>Kills the agent (its state is in memory and gone with it) and removes its folder.</summary>
    public ValueTask DisposeAsync() => new(StopProcessAsync());

    /// <inheritdoc />
    public override string ToString() => $"consul dev agent at {Address}";

    private sealed class AgentStartException(string message) : Exception(message);
}
