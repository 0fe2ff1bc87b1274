namespace Dtask.Consul.Configuration;

/// <summary>
/// How to reach a Consul agent. Usually read from the environment with <see cref="ConsulEnvironment.Read"/> and
/// then adjusted with a <c>with</c> expression.
/// </summary>
public sealed record ConsulClientOptions
{
    /// <summary>The agent's HTTP(S) address; <c>http://127.0.0.1:8500</c> by default.</summary>
    public Uri Address { get; init; } = new("http://127.0.0.1:8500");

    /// <summary>The ACL token sent with every request, or none (the agent's anonymous token).</summary>
    public ConsulToken? Token { get; init; }

    /// <summary>False to accept any server certificate (<c>CONSUL_HTTP_SSL_VERIFY=false</c>).</summary>
    public bool VerifyServerCertificate { get; init; } = true;

    /// <summary>PEM file with the CA that signs the agent's certificate (<c>CONSUL_CACERT</c>).</summary>
    public string? CaCertificateFile { get; init; }

    /// <summary>PEM client certificate for agents with <c>verify_incoming</c> (<c>CONSUL_CLIENT_CERT</c>).</summary>
    public string? ClientCertificateFile { get; init; }

    /// <summary>PEM private key of <see cref="ClientCertificateFile"/> (<c>CONSUL_CLIENT_KEY</c>).</summary>
    public string? ClientKeyFile { get; init; }

    /// <summary>Timeout of one non-blocking request.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Added to a blocking query's wait time to form its timeout (Consul adds up to wait/16 of jitter itself,
    /// which is added too).
    /// </summary>
    public TimeSpan BlockingTimeoutMargin { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How many times a read is retried after a 5xx, 429 or an unreachable agent. Writes never are.</summary>
    public int ReadRetries { get; init; } = 2;

    /// <summary>The delay before the first read retry; doubled for each further one.</summary>
    public TimeSpan ReadRetryDelay { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>
    /// The most non-blocking requests this client has in flight at once; the others wait their turn (before their
    /// timeout starts). Null: no bound. Blocking queries (a wait index) are not counted: they hold a connection for
    /// minutes and would starve the rest. Bounding a busy client keeps its burst (thousands of reads at once) from
    /// opening thousands of connections and stalling the agent for every other client.
    /// </summary>
    public int? MaxConcurrentRequests { get; init; }

    /// <summary>True when the address is <c>https</c>.</summary>
    public bool UsesTls => Address.Scheme == Uri.UriSchemeHttps;
}
