using System.Text.Json;
using Dtask.Consul.Http;

namespace Dtask.Consul.Status;

/// <summary>The status endpoints (<c>/v1/status</c>): is there a leader.</summary>
public sealed class ConsulStatus
{
    private readonly ConsulTransport transport;

    internal ConsulStatus(ConsulTransport transport) => this.transport = transport;

    /// <summary>The leader's RPC address (<c>host:port</c>), or an empty string while there is none.</summary>
    public async Task<ConsulResponse<string>> LeaderAsync(CancellationToken cancellationToken = default)
    {
        var request = new ConsulRequest(HttpMethod.Get, "/v1/status/leader", "read leader", "GET /v1/status/leader") { Read = QueryOptions.None };
        var raw = await transport.SendAsync(request, cancellationToken).ConfigureAwait(false);
        return raw.With(raw.Body.Length == 0 ? "" : raw.Decode(ConsulJsonContext.Default.String, required: false) ?? "");
    }
}
