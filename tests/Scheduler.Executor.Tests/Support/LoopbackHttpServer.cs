using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Dtask.Executor.Tests.Support;

/// <summary>A request as it reached the loopback server.</summary>
public sealed record RecordedRequest(
    string Method, string PathAndQuery, IReadOnlyDictionary<string, string> Headers, string Body, TimeSpan ReceivedAt);

/// <summary>What the loopback server answers.</summary>
public sealed record LoopbackResponse(int Status, IReadOnlyDictionary<string, string>? Headers = null)
{
    public static LoopbackResponse Ok { get; } = new(200);
}

/// <summary>
/// A real HTTP server on 127.0.0.1 (HttpListener on a free port) that records every request and answers with
/// whatever the handler returns; the handler may wait (to model a server that does not answer).
/// </summary>
public sealed class LoopbackHttpServer : IAsyncDisposable
{
    private readonly HttpListener listener = new();
    private readonly Func<int, RecordedRequest, Task<LoopbackResponse>> handler;
    private readonly ConcurrentQueue<RecordedRequest> requests = new();
    private readonly Stopwatch clock = Stopwatch.StartNew();
    private readonly CancellationTokenSource stopping = new();
    private readonly SemaphoreSlim arrived = new(0);
    private readonly ConcurrentDictionary<Task, byte> serving = new();
    private readonly Task loop;
    private int count;

    public LoopbackHttpServer(Func<int, RecordedRequest, Task<LoopbackResponse>>? handler = null)
    {
        this.handler = handler ?? ((_, _) => Task.FromResult(LoopbackResponse.Ok));
        for (var attempt = 0; ; attempt++)
        {
            Port = FreeTcpPort();
            listener.Prefixes.Clear();
            listener.Prefixes.Add($"http://127.0.0.1:{Port}/");
            try
            {
                listener.Start();
                break;
            }
            catch (HttpListenerException) when (attempt < 5)
            {
            }
        }

        loop = Task.Run(AcceptLoopAsync);
    }

    public int Port { get; }

    public Uri BaseUri => new($"http://127.0.0.1:{Port}/");

    public IReadOnlyList<RecordedRequest> Requests => [.. requests];

    public static int FreeTcpPort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    /// <summary>Waits until at least <paramref name="n"/> requests arrived (10 s at most, then fails).</summary>
    public async Task<IReadOnlyList<RecordedRequest>> WaitForRequestsAsync(int n)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (requests.Count < n)
        {
            try
            {
                await arrived.WaitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                Assert.Fail($"expected {n} requests, got {requests.Count}");
            }
        }

        return Requests;
    }

    public async ValueTask DisposeAsync()
    {
        await stopping.CancelAsync();

        // Let handlers that are finishing (a test releasing a waiting handler just before disposal) write their
        // response before the listener closes: closing it while a response is being closed races inside HttpListener.
        // Handlers that never finish are left behind after a bound.
        await Task.WhenAny(Task.WhenAll(serving.Keys), Task.Delay(TimeSpan.FromSeconds(5)));
        listener.Stop();
        listener.Close();
        try
        {
            await loop;
        }
        catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or OperationCanceledException)
        {
        }

        stopping.Dispose();
        arrived.Dispose();
    }

    private async Task AcceptLoopAsync()
    {
        while (!stopping.IsCancellationRequested)
        {
            HttpListenerContext context;
            try
            {
                context = await listener.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }

            var serve = Task.Run(() => ServeAsync(context));
            serving[serve] = 0;
            _ = serve.ContinueWith(t => serving.TryRemove(t, out _), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
    }

    private async Task ServeAsync(HttpListenerContext context)
    {
        try
        {
            string body;
            using (var reader = new StreamReader(context.Request.InputStream, Encoding.UTF8))
            {
                body = await reader.ReadToEndAsync();
            }

            var headers = context.Request.Headers.AllKeys.Where(k => k is not null)
                .ToDictionary(k => k!, k => context.Request.Headers[k] ?? "", StringComparer.OrdinalIgnoreCase);
            var request = new RecordedRequest(context.Request.HttpMethod, context.Request.Url!.PathAndQuery, headers, body, clock.Elapsed);
            var index = Interlocked.Increment(ref count);
            requests.Enqueue(request);
            arrived.Release();
            var response = await handler(index, request);
            context.Response.StatusCode = response.Status;
            foreach (var (name, value) in response.Headers ?? new Dictionary<string, string>())
            {
                context.Response.Headers[name] = value;
            }

            context.Response.Close();
        }
        catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException or IOException)
        {
        }
    }
}
