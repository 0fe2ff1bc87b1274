using System.Net;

namespace Dtask.Consul.Errors;

/// <summary>
/// A Consul request failed. <see cref="Subject"/> names the key, session or endpoint; the message says what was
/// done and why it failed. Neither ever contains the ACL token.
/// </summary>
public abstract class ConsulException : Exception
{
    /// <summary>Creates the exception.</summary>
    protected ConsulException(string subject, string message, HttpStatusCode? status, Exception? inner)
        : base(message, inner)
    {
        Subject = subject;
        StatusCode = status;
    }

    /// <summary>What the request was about: a key, a session, or an endpoint such as <c>PUT /v1/txn</c>.</summary>
    public string Subject { get; }

    /// <summary>The HTTP status the agent answered, when it answered.</summary>
    public HttpStatusCode? StatusCode { get; }
}

/// <summary>The thing asked for does not exist (404): a session that is gone, an ACL object, a key.</summary>
public sealed class ConsulNotFoundException(string subject, string message, Exception? inner = null)
    : ConsulException(subject, message, HttpStatusCode.NotFound, inner);

/// <summary>
/// A check-and-set or lock was refused: the index was stale, the lock is held by another session, or lock-delay
/// is still in force. Thrown by <see cref="Txn.TxnResult.ThrowIfRolledBack"/>; single-key CAS writes return false instead.
/// </summary>
public class ConsulConflictException(string subject, string message, Exception? inner = null)
    : ConsulException(subject, message, HttpStatusCode.Conflict, inner);

/// <summary>The token may not do this (403).</summary>
public sealed class ConsulPermissionDeniedException(string subject, string message)
    : ConsulException(subject, message, HttpStatusCode.Forbidden, null);

/// <summary>The request is larger than the agent allows (413): a value over 512 KiB, too many txn operations.</summary>
public sealed class ConsulTooLargeException(string subject, string message)
    : ConsulException(subject, message, HttpStatusCode.RequestEntityTooLarge, null);

/// <summary>The agent is rate-limiting this client (429).</summary>
public sealed class ConsulRateLimitedException(string subject, string message)
    : ConsulException(subject, message, HttpStatusCode.TooManyRequests, null);

/// <summary>The agent answered with a server error (5xx), for example while the cluster has no leader.</summary>
public class ConsulServerException(string subject, string message, HttpStatusCode status)
    : ConsulException(subject, message, status, null);

/// <summary>The cluster has no elected leader (500 "No cluster leader"): nothing can be written or read consistently.</summary>
public sealed class ConsulNoLeaderException(string subject, string message)
    : ConsulServerException(subject, message, HttpStatusCode.InternalServerError);

/// <summary>The request was malformed or refused for another reason (other 4xx).</summary>
public sealed class ConsulRequestException(string subject, string message, HttpStatusCode status)
    : ConsulException(subject, message, status, null);

/// <summary>
/// The agent could not be reached: connection refused, DNS failure, connection reset, or no answer within the
/// call's timeout. The outcome of a write that fails this way is unknown: re-read before deciding.
/// </summary>
public sealed class ConsulUnreachableException(string subject, string message, Exception? inner)
    : ConsulException(subject, message, null, inner);

/// <summary>The TLS handshake failed: the server's certificate was not trusted, or the server refused ours.</summary>
public sealed class ConsulTlsException(string subject, string message, Exception? inner)
    : ConsulException(subject, message, null, inner);
