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

    /// <summary>ACLs enabled, default policy deny; this is the master (bootstrap) token.</summary>
    public string? AclMasterToken { get; init; }

    /// <summary>HTTP, HTTPS or mutual TLS.</summary>
    public AgentTransport Transport { get; init; } = AgentTransport.Http;

    /// <summary>How long to wait for a leader before giving up.</summary>
    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromSeconds(30);
}
