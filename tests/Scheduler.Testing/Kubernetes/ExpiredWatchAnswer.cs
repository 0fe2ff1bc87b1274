namespace Dtask.Testing.Kubernetes;

/// <summary>How the loopback API server answers a watch that starts from a resource version it no longer has.</summary>
public enum ExpiredWatchAnswer
{
    /// <summary>
    /// <c>200 OK</c>, then one <c>ERROR</c> event carrying a <c>Status</c> with code 410 and reason <c>Expired</c>, then
    /// the end of the stream: what a real API server does.
    /// </summary>
    ErrorEvent,

    /// <summary>The watch request itself is answered <c>410 Gone</c> with a <c>Status</c> body.</summary>
    HttpGone,
}
