using System.Net;
using System.Threading.Channels;
using Serilog;

namespace Dtask.Executor.Notifications;

/// <summary>How a <see cref="HttpOutbox"/> sends.</summary>
/// <param name="Capacity">Requests waiting at most; when full the oldest is dropped and counted.</param>
/// <param name="RequestTimeout">How long one attempt may take.</param>
/// <param name="MaxAttempts">Attempts per request, the first included.</param>
/// <param name="InitialBackoff">The wait after the first failed attempt; doubled after each further one.</param>
/// <param name="MaxBackoff">The longest wait between attempts (a 429's Retry-After excepted).</param>
/// <param name="MaxRetryAfter">The longest Retry-After honoured; a longer one is cut to this.</param>
/// <param name="ShutdownDeadline">How long disposal waits for queued requests before it gives up on them.</param>
public sealed record HttpOutboxOptions(
    int Capacity,
    TimeSpan RequestTimeout,
    int MaxAttempts,
    TimeSpan InitialBackoff,
    TimeSpan MaxBackoff,
    TimeSpan MaxRetryAfter,
    TimeSpan ShutdownDeadline)
{
    /// <summary>256 queued, 10 s per attempt, 5 attempts from 1 s to 30 s apart, Retry-After up to 2 min, 5 s to flush.</summary>
    public static HttpOutboxOptions Default { get; } = new(
        256, TimeSpan.FromSeconds(10), 5, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(30), TimeSpan.FromMinutes(2), TimeSpan.FromSeconds(5));

    /// <summary>The wait before attempt <paramref name="attempt"/> + 1, without a Retry-After.</summary>
    /// <param name="attempt">The attempt that failed, from 1.</param>
    /// <returns>The wait.</returns>
    public TimeSpan Backoff(int attempt)
    {
        var factor = Math.Pow(2, Math.Clamp(attempt - 1, 0, 30));
        var wait = TimeSpan.FromTicks((long)Math.Min(InitialBackoff.Ticks * factor, MaxBackoff.Ticks));
        return wait < TimeSpan.Zero ? TimeSpan.Zero : wait;
    }
}

/// <summary>
/// Sends HTTP requests in the background, one at a time in order, from a bounded queue: <see cref="Enqueue"/>
/// returns at once. Each request is retried on network errors, timeouts, 408, 429 (after its Retry-After) and
/// 5xx, with exponential backoff; other statuses are final. Disposal flushes what is queued within the
/// deadline. Only the description given to <see cref="Enqueue"/> and status codes are logged — never a URL,
/// header or body, since those carry webhook tokens and API keys.
/// </summary>
public sealed class HttpOutbox : IAsyncDisposable
{
    private readonly string name;
    private readonly HttpClient client;
    private readonly HttpOutboxOptions options;
    private readonly ILogger logger;
    private readonly TimeProvider timeProvider;
    private readonly Channel<PendingRequest> channel;
    private readonly CancellationTokenSource stopping = new();
    private readonly Task worker;
    private long dropped;
    private long delivered;
    private long failed;
    private int disposed;

    /// <summary>Creates the queue and starts its worker.</summary>
    /// <param name="name">What is delivered (<c>slack</c>, <c>datadog</c>), for logs.</param>
    /// <param name="client">The client; not owned.</param>
    /// <param name="options">Queue and retry settings.</param>
    /// <param name="logger">For delivery problems.</param>
    /// <param name="timeProvider">For timeouts and backoff.</param>
    public HttpOutbox(string name, HttpClient client, HttpOutboxOptions options, ILogger logger, TimeProvider timeProvider)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(logger);
        ArgumentNullException.ThrowIfNull(timeProvider);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Capacity, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxAttempts, 1);
        this.name = name;
        this.client = client;
        this.options = options;
        this.logger = logger.ForContext("Delivery", name);
        this.timeProvider = timeProvider;
        channel = Channel.CreateBounded<PendingRequest>(
            new BoundedChannelOptions(options.Capacity)
            {
                FullMode = BoundedChannelFullMode.DropOldest,
                SingleReader = true,
                SingleWriter = false,
            },
            OnDropped);
        worker = Task.Run(RunAsync);
    }

    /// <summary>Requests dropped because the queue was full or closed.</summary>
    public long Dropped => Interlocked.Read(ref dropped);

    /// <summary>Requests delivered (a 2xx answer).</summary>
    public long Delivered => Interlocked.Read(ref delivered);

    /// <summary>Requests given up on (a final status, attempts exhausted, or shutdown).</summary>
    public long Failed => Interlocked.Read(ref failed);

    /// <summary>Queues a request; returns at once.</summary>
    /// <param name="description">What it is, for logs (no secrets).</param>
    /// <param name="createRequest">Builds the request; called once per attempt.</param>
    /// <returns>Whether it was queued (false after disposal).</returns>
    public bool Enqueue(string description, Func<HttpRequestMessage> createRequest)
    {
        ArgumentNullException.ThrowIfNull(createRequest);
        if (channel.Writer.TryWrite(new PendingRequest(description, createRequest)))
        {
            return true;
        }

        Interlocked.Increment(ref dropped);
        return false;
    }

    /// <summary>Stops accepting requests, delivers what is queued until the shutdown deadline, then abandons the rest.</summary>
    /// <returns>A task that completes when the worker has stopped.</returns>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref disposed, 1) == 1)
        {
            return;
        }

        channel.Writer.TryComplete();
        try
        {
            await worker.WaitAsync(options.ShutdownDeadline, timeProvider).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            await stopping.CancelAsync().ConfigureAwait(false);
            await worker.ConfigureAwait(false);
        }

        var abandoned = 0;
        while (channel.Reader.TryRead(out _))
        {
            abandoned++;
        }

        if (abandoned > 0)
        {
            Interlocked.Add(ref failed, abandoned);
            logger.Warning("{Delivery:l}: {Abandoned} queued notifications not sent before shutdown", name, abandoned);
        }

        stopping.Dispose();
    }

    private void OnDropped(PendingRequest request)
    {
        var count = Interlocked.Increment(ref dropped);
        if ((count & (count - 1)) == 0)
        {
            logger.Warning("{Delivery:l}: queue full, dropped {Description:l} ({Dropped} dropped so far)", name, request.Description, count);
        }
    }

    private async Task RunAsync()
    {
        try
        {
            while (await channel.Reader.WaitToReadAsync(stopping.Token).ConfigureAwait(false))
            {
                while (channel.Reader.TryRead(out var request))
                {
                    if (await DeliverAsync(request).ConfigureAwait(false))
                    {
                        Interlocked.Increment(ref delivered);
                    }
                    else
                    {
                        Interlocked.Increment(ref failed);
                    }
                }
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            // Shutdown deadline passed: what is left is counted by DisposeAsync.
        }
    }

    private async Task<bool> DeliverAsync(PendingRequest pending)
    {
        for (var attempt = 1; ; attempt++)
        {
            TimeSpan wait;
            string problem;
            try
            {
                using var timeout = new CancellationTokenSource(options.RequestTimeout, timeProvider);
                using var linked = CancellationTokenSource.CreateLinkedTokenSource(stopping.Token, timeout.Token);
                using var request = pending.CreateRequest();
                using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, linked.Token)
                    .ConfigureAwait(false);
                if (response.IsSuccessStatusCode)
                {
                    return true;
                }

                var status = (int)response.StatusCode;
                problem = $"HTTP {status}";
                if (response.StatusCode == HttpStatusCode.TooManyRequests)
                {
                    wait = RetryAfter(response, timeProvider.GetUtcNow(), options.MaxRetryAfter) ?? options.Backoff(attempt);
                }
                else if (status >= 500 || response.StatusCode == HttpStatusCode.RequestTimeout)
                {
                    wait = options.Backoff(attempt);
                }
                else
                {
                    logger.Warning("{Delivery:l}: {Description:l} refused with HTTP {Status}; not retried", name, pending.Description, status);
                    return false;
                }
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                logger.Warning("{Delivery:l}: {Description:l} abandoned at shutdown", name, pending.Description);
                return false;
            }
            catch (OperationCanceledException)
            {
                problem = $"no answer within {options.RequestTimeout.TotalSeconds:0.###} s";
                wait = options.Backoff(attempt);
            }
            catch (HttpRequestException e)
            {
                // The exception's message may name the endpoint; only its kind is logged.
                problem = $"request error {e.HttpRequestError}";
                wait = options.Backoff(attempt);
            }

            if (attempt >= options.MaxAttempts)
            {
                logger.Warning("{Delivery:l}: {Description:l} not delivered after {Attempts} attempts ({Problem:l})", name, pending.Description, attempt, problem);
                return false;
            }

            logger.Debug("{Delivery:l}: {Description:l} attempt {Attempt} failed ({Problem:l}); retrying in {Wait:l}", name, pending.Description, attempt, problem, Logging.DurationText.Of(wait));
            try
            {
                await Task.Delay(wait, timeProvider, stopping.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                logger.Warning("{Delivery:l}: {Description:l} abandoned at shutdown", name, pending.Description);
                return false;
            }
        }
    }

    /// <summary>The wait a 429 answer asks for (<c>Retry-After</c> as seconds or as a date), capped; null when absent.</summary>
    internal static TimeSpan? RetryAfter(HttpResponseMessage response, DateTimeOffset now, TimeSpan cap)
    {
        var header = response.Headers.RetryAfter;
        TimeSpan? wait = header switch
        {
            { Delta: { } delta } => delta,
            { Date: { } date } => date - now,
            _ => null,
        };
        return wait is null ? null : TimeSpan.FromTicks(Math.Clamp(wait.Value.Ticks, 0, cap.Ticks));
    }

    private sealed record PendingRequest(string Description, Func<HttpRequestMessage> CreateRequest);
}
