using System.Net;

namespace Dtask.Executor.Tests.Support;

/// <summary>What <see cref="FaultInjectingHandler"/> does to a request.</summary>
public enum Fault
{
    /// <summary>Passes it on.</summary>
    None,

    /// <summary>Fails it before it is sent, as an agent that cannot be reached.</summary>
    Unreachable,

    /// <summary>Sends it, then fails as if the answer was lost: the write may have been applied.</summary>
    AnswerLost,

    /// <summary>Answers 403 without sending it: a refusal retrying cannot fix.</summary>
    Forbidden,
}

/// <summary>
/// Sits between a Consul client and the real agent, and fails the requests <see cref="Decide"/> picks (all of them
/// while <see cref="Outage"/> is set). Counts what it failed.
/// </summary>
public sealed class FaultInjectingHandler() : DelegatingHandler(new SocketsHttpHandler())
{
    private int failed;
    private bool outage;

    /// <summary>While true, every request fails as <see cref="Fault.Unreachable"/>.</summary>
    public bool Outage
    {
        get => Volatile.Read(ref outage);
        set => Volatile.Write(ref outage, value);
    }

    /// <summary>Picks the fault of a request (its method, path and body); none when null.</summary>
    public Func<HttpMethod, string, string, Fault>? Decide { get; set; }

    /// <summary>Runs before a request is sent (its method, path and body), e.g. to let another actor act first.</summary>
    public Func<HttpMethod, string, string, Task>? BeforeSend { get; set; }

    /// <summary>How many requests failed so far.</summary>
    public int Failed => Volatile.Read(ref failed);

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var path = request.RequestUri?.AbsolutePath ?? "";
        var body = request.Content is null ? "" : await request.Content.ReadAsStringAsync(cancellationToken);
        if (BeforeSend is { } before)
        {
            await before(request.Method, path, body);
        }

        var fault = Outage ? Fault.Unreachable : Decide?.Invoke(request.Method, path, body) ?? Fault.None;
        switch (fault)
        {
            case Fault.Unreachable:
                Interlocked.Increment(ref failed);
                throw new HttpRequestException(HttpRequestError.ConnectionError, "injected: connection refused");
            case Fault.Forbidden:
                Interlocked.Increment(ref failed);
                return new HttpResponseMessage(HttpStatusCode.Forbidden) { RequestMessage = request, Content = new StringContent("Permission denied: injected") };
            case Fault.AnswerLost:
                using (await base.SendAsync(request, cancellationToken))
                {
                    Interlocked.Increment(ref failed);
                    throw new HttpRequestException(HttpRequestError.ResponseEnded, "injected: the answer was lost");
                }
            default:
                return await base.SendAsync(request, cancellationToken);
        }
    }
}
