namespace Dtask.Testing;

/// <summary>How an agent's HTTP API is exposed.</summary>
public enum AgentTransport
{
    /// <summary>Plain HTTP.</summary>
    Http,

    /// <summary>HTTPS only (<c>ports.http = -1</c>), the server certificate signed by a fresh CA.</summary>
    Https,

    /// <summary>HTTPS only, and clients must present a certificate signed by the same CA (<c>verify_incoming</c>).</summary>
    MutualTls,
}

/// <summary>What kind of dev agent to start.</summary>
public sealed record ConsulAgentOptions
{
    /// <summary>A plain dev agent.</summary>
    public static ConsulAgentOptions Dev { get; } = new();

    /// <summary>A single server with a persistent data folder, restartable with its data.</summary>
    public static ConsulAgentOptions SingleServer { get; } = new() { PersistentServer = true };

    /// <summary>ACLs enabled, default policy deny; this is the master (bootstrap) token.</summary>
    public string? AclMasterToken { get; init; }

    /// <summary>HTTP, HTTPS or mutual TLS.</summary>
    public AgentTransport Transport { get; init; } = AgentTransport.Http;

    /// <summary>
    /// A server agent (<c>-server -bootstrap-expect=N</c>) with its state in a data folder on disk, instead of a dev agent
    /// whose state is in memory: its data survives <see cref="ConsulAgent.RestartAsync"/> (same folder, same ports).
    /// </summary>
    public bool PersistentServer { get; init; }

    /// <summary>For <see cref="PersistentServer"/>: how many servers the cluster expects before electing a leader (1: alone).</summary>
    public int BootstrapExpect { get; init; } = 1;

    /// <summary>For <see cref="PersistentServer"/>: addresses of other servers to join (<c>retry_join</c>), such as <c>127.0.0.1:8301</c>.</summary>
    public IReadOnlyList<string> RetryJoin { get; init; } = [];

    /// <summary>How long to wait for a leader before giving up.</summary>
    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromSeconds(30);
}
