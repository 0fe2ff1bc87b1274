using Dtask.Consul.Acl;
using Dtask.Consul.Configuration;
using Dtask.Consul.Http;
using Dtask.Consul.Kv;
using Dtask.Consul.Sessions;
using Dtask.Consul.Status;
using Dtask.Consul.Txn;

namespace Dtask.Consul;

/// <summary>
/// A typed client of one Consul agent's HTTP API. Thread-safe; make one per agent and share it.
/// Every call takes a <see cref="CancellationToken"/> and has its own timeout; reads are retried a bounded number
/// of times on 5xx, 429 and connection failures, writes never are.
/// </summary>
public sealed class ConsulClient : IDisposable
{
    private readonly ConsulTransport transport;

    /// <summary>Connects to the agent described by <paramref name="options"/>.</summary>
    /// <exception cref="ConsulConfigurationException">A CA or client certificate file cannot be read.</exception>
    public ConsulClient(ConsulClientOptions options, TimeProvider? time = null)
        : this(options, handler: null, time)
    {
    }

    /// <summary>Connects through a caller-supplied handler (which then owns TLS settings).</summary>
    public ConsulClient(ConsulClientOptions options, HttpMessageHandler? handler, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        Options = options;
        transport = new ConsulTransport(options, handler, time ?? TimeProvider.System);
        Kv = new ConsulKv(transport);
        Txn = new ConsulTxn(transport);
        Sessions = new ConsulSessions(transport);
        Acl = new ConsulAcl(transport);
        Status = new ConsulStatus(transport);
    }

    /// <summary>The options in use (the token prints redacted).</summary>
    public ConsulClientOptions Options { get; }

    /// <summary>The KV store.</summary>
    public ConsulKv Kv { get; }

    /// <summary>Transactions.</summary>
    public ConsulTxn Txn { get; }

    /// <summary>Sessions.</summary>
    public ConsulSessions Sessions { get; }

    /// <summary>ACL policies and tokens.</summary>
    public ConsulAcl Acl { get; }

    /// <summary>Leader status.</summary>
    public ConsulStatus Status { get; }

    /// <summary>Counts of HTTP requests and writes sent by this client.</summary>
    public ConsulRequestCounters Requests => transport.Counters;

    /// <inheritdoc />
    public override string ToString() => $"Consul at {Options.Address}";

    /// <inheritdoc />
    public void Dispose() => transport.Dispose();
}
