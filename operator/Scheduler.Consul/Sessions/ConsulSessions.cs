using System.Net;
using System.Text.Json;
using Dtask.Consul.Errors;
using Dtask.Consul.Http;

namespace Dtask.Consul.Sessions;

/// <summary>The session endpoints (<c>/v1/session</c>).</summary>
public sealed class ConsulSessions
{
    private readonly ConsulTransport transport;

    internal ConsulSessions(ConsulTransport transport) => this.transport = transport;

    /// <summary>Creates a TTL-only session (no node or service checks) and returns its id.</summary>
    public async Task<ConsulResponse<string>> CreateAsync(SessionRequest session, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(session);
        if (session.Ttl < SessionRequest.MinimumTtl || session.Ttl > TimeSpan.FromHours(24))
        {
            throw new ArgumentOutOfRangeException(nameof(session), session.Ttl, "a session TTL must be between 10 s and 24 h");
        }
        // NodeChecks: [] drops the default serfHealth check, so only the TTL decides the session's life.
        var wire = new SessionCreateWire(session.Name, ConsulRequest.FormatDuration(session.Ttl),
            ConsulRequest.FormatDuration(session.LockDelay),
            session.Behavior == SessionBehavior.Delete ? "delete" : "release", session.Node, []);
        var request = new ConsulRequest(HttpMethod.Put, "/v1/session/create", "create session", $"'{session.Name}'")
        {
            Body = JsonSerializer.SerializeToUtf8Bytes(wire, ConsulJsonContext.Default.SessionCreateWire),
        };
        var raw = await transport.SendAsync(request, cancellationToken).ConfigureAwait(false);
        var id = raw.Decode(ConsulJsonContext.Default.SessionIdWire, required: false)?.ID
            ?? throw new ConsulServerException(request.Subject, "create session: the agent answered without a session id", raw.Status);
        return raw.With(id);
    }

    /// <summary>
    /// Renews a session and returns it as the server now sees it: adopt its <see cref="SessionInfo.Ttl"/>, the
    /// server may raise it.
    /// </summary>
    /// <exception cref="ConsulNotFoundException">The session no longer exists: it was destroyed or expired, and its locks are gone.</exception>
    public async Task<ConsulResponse<SessionInfo>> RenewAsync(string sessionId, CancellationToken cancellationToken = default)
    {
        var request = new ConsulRequest(HttpMethod.Put, "/v1/session/renew/" + Uri.EscapeDataString(sessionId), "renew session", sessionId);
        var raw = await transport.SendAsync(request, cancellationToken).ConfigureAwait(false);
        var sessions = Decode(raw);
        return sessions.Count > 0
            ? raw.With(sessions[0])
            : throw new ConsulNotFoundException(sessionId, $"renew session {sessionId} failed: the session no longer exists");
    }

    /// <summary>Destroys a session, releasing (or deleting) its locks. Destroying a missing session succeeds.</summary>
    public async Task<ConsulResponse<bool>> DestroyAsync(string sessionId, CancellationToken cancellationToken = default)
    {
        var request = new ConsulRequest(HttpMethod.Put, "/v1/session/destroy/" + Uri.EscapeDataString(sessionId), "destroy session", sessionId);
        var raw = await transport.SendAsync(request, cancellationToken).ConfigureAwait(false);
        return raw.With(raw.Body.Length > 0 && raw.Decode(ConsulJsonContext.Default.Boolean));
    }

    /// <summary>Reads a session; null when it does not exist.</summary>
    public async Task<ConsulResponse<SessionInfo?>> InfoAsync(string sessionId, QueryOptions? query = null, CancellationToken cancellationToken = default)
    {
        var request = new ConsulRequest(HttpMethod.Get, "/v1/session/info/" + Uri.EscapeDataString(sessionId), "read session", sessionId)
        {
            Read = query ?? QueryOptions.None,
            Accepted = [HttpStatusCode.NotFound],
        };
        var raw = await transport.SendAsync(request, cancellationToken).ConfigureAwait(false);
        var sessions = Decode(raw);
        return raw.With(sessions.Count > 0 ? sessions[0] : null);
    }

    /// <summary>Lists every session in the datacenter.</summary>
    public async Task<ConsulResponse<IReadOnlyList<SessionInfo>>> ListAsync(QueryOptions? query = null, CancellationToken cancellationToken = default)
    {
        var request = new ConsulRequest(HttpMethod.Get, "/v1/session/list", "list sessions", "GET /v1/session/list") { Read = query ?? QueryOptions.None };
        var raw = await transport.SendAsync(request, cancellationToken).ConfigureAwait(false);
        return raw.With<IReadOnlyList<SessionInfo>>(Decode(raw));
    }

    private static List<SessionInfo> Decode(ConsulRawResponse raw)
    {
        if (raw.Status == HttpStatusCode.NotFound || raw.Body.Length == 0)
        {
            return [];
        }

        var wire = raw.Decode(ConsulJsonContext.Default.ListSessionWire);
        if (wire.Exists(w => w is null || string.IsNullOrEmpty(w.ID)))
        {
            throw raw.Malformed("a session without an ID", null);
        }

        try
        {
            return wire.ConvertAll(SessionInfo.FromWire);
        }
        catch (Exception e) when (e is FormatException or OverflowException or ArgumentException)
        {
            throw raw.Malformed(e.Message, e);
        }
    }
}
