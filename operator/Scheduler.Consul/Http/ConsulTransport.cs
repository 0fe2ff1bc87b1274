using System.Globalization;
using System.Net;
using System.Security.Authentication;
using System.Text;
using Dtask.Consul.Configuration;
using Dtask.Consul.Errors;

namespace Dtask.Consul.Http;

/// <summary>
/// Sends requests to one agent: adds the token header, applies per-call timeouts, retries reads (never writes),
/// counts requests, reads the response metadata and turns failures into <see cref="ConsulException"/>s.
/// </summary>
internal sealed class ConsulTransport : IDisposable
{
    private const int MaxErrorBodyChars = 300;
    private readonly HttpClient http;
    private readonly ConsulClientOptions options;
    private readonly ServerCertificateTrust trust;
    private readonly TimeProvider time;
    private readonly SemaphoreSlim? permits;

    public ConsulTransport(ConsulClientOptions options, HttpMessageHandler? handler, TimeProvider time)
    {
        this.options = options;
        this.time = time;
        permits = options.MaxConcurrentRequests is { } most ? new SemaphoreSlim(Math.Max(1, most)) : null;
        trust = new ServerCertificateTrust(options.VerifyServerCertificate, ConsulMessageHandler.LoadAuthorities(options));
        http = new HttpClient(handler ?? ConsulMessageHandler.Create(options, trust), disposeHandler: true)
        {
            BaseAddress = options.Address,
            Timeout = Timeout.InfiniteTimeSpan,
        };
    }

    public ConsulRequestCounters Counters { get; } = new();

    public async Task<ConsulRawResponse> SendAsync(ConsulRequest request, CancellationToken cancellationToken)
    {
        var attempts = request.IsWrite ? 1 : 1 + Math.Max(0, options.ReadRetries);
        var delay = options.ReadRetryDelay;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await SendOnceAsync(request, cancellationToken).ConfigureAwait(false);
            }
            catch (ConsulException e) when (attempt < attempts && IsRetryable(e))
            {
                await Task.Delay(delay, time, cancellationToken).ConfigureAwait(false);
                delay *= 2;
            }
        }
    }

    private static bool IsRetryable(ConsulException e) =>
        e is ConsulUnreachableException or ConsulServerException or ConsulRateLimitedException;

    private TimeSpan TimeoutOf(ConsulRequest request)
    {
        if (request.Read is { WaitIndex: > 0 } read)
        {
            var wait = read.WaitTime ?? TimeSpan.FromMinutes(5);
            return wait + (wait / 16) + options.BlockingTimeoutMargin;
        }
        return options.RequestTimeout;
    }

    private async Task<ConsulRawResponse> SendOnceAsync(ConsulRequest request, CancellationToken cancellationToken)
    {
        if (permits is null || request.Read is { WaitIndex: > 0 })
        {
            return await SendNowAsync(request, cancellationToken).ConfigureAwait(false);
        }

        await permits.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await SendNowAsync(request, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            permits.Release();
        }
    }

    private async Task<ConsulRawResponse> SendNowAsync(ConsulRequest request, CancellationToken cancellationToken)
    {
        var timeout = TimeoutOf(request);
        using var timeoutSource = new CancellationTokenSource(timeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeoutSource.Token);
        using var message = new HttpRequestMessage(request.Method, request.PathAndQuery());
        if (options.Token is { } token)
        {
            message.Headers.TryAddWithoutValidation("X-Consul-Token", token.Reveal());
        }
        if (request.Body is { } body)
        {
            message.Content = new ReadOnlyMemoryContent(body);
        }

        var started = time.GetTimestamp();
        Counters.Count(request.IsWrite);
        var answered = false;
        try
        {
            HttpResponseMessage response;
            byte[] bytes;
            try
            {
                response = await http.SendAsync(message, HttpCompletionOption.ResponseContentRead, linked.Token).ConfigureAwait(false);
                bytes = await response.Content.ReadAsByteArrayAsync(linked.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
            {
                throw new ConsulUnreachableException(request.Subject,
                    $"{request.Operation} {request.Subject} failed: the Consul agent at {options.Address} did not answer within {timeout.TotalSeconds:0.#} s", e);
            }
            catch (HttpRequestException e)
            {
                throw TransportFailure(request, e);
            }

            using (response)
            {
                var meta = ReadMeta(response, time.GetElapsedTime(started));
                if (response.IsSuccessStatusCode || request.Accepted.Contains(response.StatusCode))
                {
                    answered = true;
                    return new ConsulRawResponse(response.StatusCode, bytes, meta) { Endpoint = $"{request.Method} {request.Path}" };
                }
                throw StatusFailure(request, response.StatusCode, bytes);
            }
        }
        finally
        {
            Counters.Finished(request.Path, request.Method.Method, !answered && !cancellationToken.IsCancellationRequested);
        }
    }

    private ConsulException TransportFailure(ConsulRequest request, HttpRequestException e)
    {
        var what = $"{request.Operation} {request.Subject}";
        if (FindInner<AuthenticationException>(e) is { } tls)
        {
            var refusal = trust.TakeLastRefusal();
            var message = refusal is not null
                ? $"{what} failed: the TLS certificate of the Consul agent at {options.Address} was not trusted: {refusal}"
                : $"{what} failed: the TLS handshake with the Consul agent at {options.Address} failed: {Innermost(tls).Message}";
            return new ConsulTlsException(request.Subject, message, e);
        }
        if (options.UsesTls && options.ClientCertificateFile is null && IsResetDuringTls(e))
        {
            return new ConsulTlsException(request.Subject,
                $"{what} failed: the Consul agent at {options.Address} closed the TLS connection; it may require a client certificate (CONSUL_CLIENT_CERT/CONSUL_CLIENT_KEY): {Innermost(e).Message}", e);
        }
        return new ConsulUnreachableException(request.Subject,
            $"{what} failed: cannot reach the Consul agent at {options.Address}: {Innermost(e).Message}", e);
    }

    private static bool IsResetDuringTls(HttpRequestException e) =>
        e.HttpRequestError is HttpRequestError.SecureConnectionError or HttpRequestError.ResponseEnded
        || FindInner<IOException>(e) is not null;

    private ConsulException StatusFailure(ConsulRequest request, HttpStatusCode status, byte[] body)
    {
        var text = Redact(Encoding.UTF8.GetString(body).Trim());
        if (text.Length > MaxErrorBodyChars)
        {
            text = text[..MaxErrorBodyChars] + "…";
        }
        var code = (int)status;
        var what = $"{request.Operation} {request.Subject}";
        var agent = $"(HTTP {code} from {options.Address}{(text.Length > 0 ? ": " + text : "")})";
        return status switch
        {
            HttpStatusCode.Forbidden => new ConsulPermissionDeniedException(request.Subject,
                $"{what} was refused: permission denied, the ACL token does not allow it {agent}"),
            HttpStatusCode.NotFound => new ConsulNotFoundException(request.Subject, $"{what} failed: not found {agent}"),
            HttpStatusCode.Conflict => new ConsulConflictException(request.Subject, $"{what} failed: conflict {agent}"),
            HttpStatusCode.RequestEntityTooLarge => new ConsulTooLargeException(request.Subject,
                $"{what} failed: the request is too large for the agent {agent}"),
            HttpStatusCode.TooManyRequests => new ConsulRateLimitedException(request.Subject,
                $"{what} failed: the agent is rate-limiting this client {agent}"),
            _ when text.Contains("No cluster leader", StringComparison.OrdinalIgnoreCase) => new ConsulNoLeaderException(
                request.Subject, $"{what} failed: the Consul cluster has no leader {agent}"),
            _ when code >= 500 => new ConsulServerException(request.Subject, $"{what} failed: server error {agent}", status),
            _ => new ConsulRequestException(request.Subject, $"{what} failed: the agent refused the request {agent}", status),
        };
    }

    private string Redact(string text) =>
        options.Token is { } token ? text.Replace(token.Reveal(), "[redacted]", StringComparison.Ordinal) : text;

    private static ConsulResponseMeta ReadMeta(HttpResponseMessage response, TimeSpan elapsed)
    {
        var headers = response.Headers;
        var index = Header(headers, "X-Consul-Index") is { } i && ulong.TryParse(i, NumberStyles.None, CultureInfo.InvariantCulture, out var parsed)
            ? parsed : 0;
        var knownLeader = string.Equals(Header(headers, "X-Consul-KnownLeader"), "true", StringComparison.OrdinalIgnoreCase);
        var lastContact = Header(headers, "X-Consul-LastContact") is { } c && long.TryParse(c, NumberStyles.None, CultureInfo.InvariantCulture, out var ms)
            ? TimeSpan.FromMilliseconds(ms) : TimeSpan.Zero;
        return new ConsulResponseMeta(index, knownLeader, lastContact, headers.Date, elapsed);
    }

    private static string? Header(System.Net.Http.Headers.HttpResponseHeaders headers, string name) =>
        headers.TryGetValues(name, out var values) ? values.FirstOrDefault() : null;

    private static T? FindInner<T>(Exception e) where T : Exception
    {
        for (Exception? current = e; current is not null; current = current.InnerException)
        {
            if (current is T match)
            {
                return match;
            }
        }
        return null;
    }

    private static Exception Innermost(Exception e)
    {
        var current = e;
        while (current.InnerException is { } inner)
        {
            current = inner;
        }
        return current;
    }

    public void Dispose()
    {
        http.Dispose();
        permits?.Dispose();
    }
}
