using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace Dtask.Operator.Tests.Support;

/// <summary>
/// An HTTP proxy in front of a real Consul agent that can hold chosen requests before forwarding them, the way a
/// stalled process or a slow network delays a request it already decided to send. Held requests are forwarded (to
/// the real agent, which decides) only when the test releases them; the answers of forwarded writes are recorded.
/// </summary>
internal sealed class HoldingConsulProxy : IAsyncDisposable
{
    private readonly HttpListener listener = new();
    private readonly HttpClient upstream;
    private readonly CancellationTokenSource stopping = new();
    private readonly ConcurrentDictionary<HeldRequest, byte> held = new();
    private readonly ConcurrentQueue<string> answered = new();
    private readonly Task serving;

    private HoldingConsulProxy(Uri agent)
    {
        upstream = new HttpClient { BaseAddress = agent, Timeout = Timeout.InfiniteTimeSpan };
        var port = FreePort();
        Address = new Uri($"http://127.0.0.1:{port}/");
        listener.Prefixes.Add(Address.ToString());
        listener.Start();
        serving = ServeAsync();
    }

    /// <summary>Where clients send their requests.</summary>
    public Uri Address { get; }

    /// <summary>Which requests to hold (method and path with query); none when null.</summary>
    public Func<string, string, bool>? Hold { get; set; }

    /// <summary>The requests held now, as <c>METHOD path</c>.</summary>
    public IReadOnlyList<string> Held => [.. held.Keys.Select(h => h.Line)];

    /// <summary>The requests that were held and then forwarded, with their answer's status, as <c>METHOD path -&gt; status</c>.</summary>
    public IReadOnlyList<string> Answered => [.. answered];

    public static HoldingConsulProxy Start(Uri agent) => new(agent);

    /// <summary>Forwards the held requests matching <paramref name="which"/>; returns how many.</summary>
    public int Release(Func<string, bool> which)
    {
        var count = 0;
        foreach (var request in held.Keys.Where(h => which(h.Line)))
        {
            if (held.TryRemove(request, out _))
            {
                request.Gate.TrySetResult();
                count++;
            }
        }

        return count;
    }

    private async Task ServeAsync()
    {
        while (!stopping.IsCancellationRequested)
        {
            HttpListenerContext context;
            try
            {
                context = await listener.GetContextAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }

            _ = Task.Run(() => ForwardAsync(context));
        }
    }

    private async Task ForwardAsync(HttpListenerContext context)
    {
        var request = context.Request;
        var path = request.RawUrl ?? "/";
        var line = $"{request.HttpMethod} {path}";
        try
        {
            using var body = new MemoryStream();
            await request.InputStream.CopyToAsync(body, stopping.Token).ConfigureAwait(false);
            var wasHeld = Hold?.Invoke(request.HttpMethod, path) == true;
            if (wasHeld)
            {
                var wait = new HeldRequest(line);
                held[wait] = 0;
                await wait.Gate.Task.WaitAsync(stopping.Token).ConfigureAwait(false);
            }

            using var forward = new HttpRequestMessage(new HttpMethod(request.HttpMethod), path);
            if (body.Length > 0 || request.HttpMethod is "PUT" or "POST")
            {
                forward.Content = new ByteArrayContent(body.ToArray());
            }

            if (request.Headers["X-Consul-Token"] is { } token)
            {
                forward.Headers.TryAddWithoutValidation("X-Consul-Token", token);
            }

            using var answer = await upstream.SendAsync(forward, stopping.Token).ConfigureAwait(false);
            var bytes = await answer.Content.ReadAsByteArrayAsync(stopping.Token).ConfigureAwait(false);
            if (wasHeld)
            {
                answered.Enqueue($"{line} -> {(int)answer.StatusCode}");
            }

            var response = context.Response;
            response.StatusCode = (int)answer.StatusCode;
            foreach (var header in answer.Headers.Concat(answer.Content.Headers))
            {
                if (header.Key.StartsWith("X-Consul", StringComparison.OrdinalIgnoreCase) || header.Key.Equals("Content-Type", StringComparison.OrdinalIgnoreCase))
                {
                    response.Headers[header.Key] = string.Join(",", header.Value);
                }
            }

            response.ContentLength64 = bytes.Length;
            await response.OutputStream.WriteAsync(bytes, stopping.Token).ConfigureAwait(false);
            response.Close();
        }
        catch (Exception e) when (e is OperationCanceledException or HttpRequestException or HttpListenerException or ObjectDisposedException or IOException)
        {
            try
            {
                context.Response.Abort();
            }
            catch (ObjectDisposedException)
            {
                // Already gone.
            }
        }
    }

    private static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    public async ValueTask DisposeAsync()
    {
        await stopping.CancelAsync();
        listener.Stop();
        listener.Close();
        try
        {
            await serving;
        }
        catch (Exception e) when (e is HttpListenerException or ObjectDisposedException)
        {
            // Stopped.
        }

        upstream.Dispose();
        stopping.Dispose();
    }

    private sealed class HeldRequest(string line)
    {
        public string Line { get; } = line;

        public TaskCompletionSource Gate { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
