using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Dtask.Executor.Tests.Support;

/// <summary>What <see cref="ConsulProxy"/> does with a request.</summary>
public enum ProxyFault
{
    /// <summary>Forwards it and its answer.</summary>
    Forward,

    /// <summary>Forwards it (the agent applies it), then resets the connection instead of answering.</summary>
    DropAnswer,

    /// <summary>Resets the connection without forwarding it: an agent that cannot be reached.</summary>
    Refuse,
}

/// <summary>
/// A real HTTP/1.1 proxy on 127.0.0.1 (plain TCP, so a dropped answer is a connection closed with a reset and nothing
/// written) in front of a real Consul agent, for a separate process (<c>dtask run</c>) whose Consul address points at it:
/// forwards every request and its answer, except those <see cref="Decide"/> drops or refuses.
/// </summary>
public sealed class ConsulProxy : IAsyncDisposable
{
    private readonly TcpListener listener = new(IPAddress.Loopback, 0);
    private readonly HttpClient agent;
    private readonly CancellationTokenSource stopping = new();
    private readonly Task loop;
    private int dropped;

    public ConsulProxy(Uri agentAddress)
    {
        agent = new HttpClient { BaseAddress = agentAddress, Timeout = TimeSpan.FromSeconds(30) };
        listener.Start();
        Port = ((IPEndPoint)listener.LocalEndpoint).Port;
        loop = Task.Run(AcceptLoopAsync);
    }

    public int Port { get; }

    public Uri Address => new($"http://127.0.0.1:{Port}/");

    /// <summary>Picks the fault of a request (method, path, body); forwards when null.</summary>
    public Func<string, string, string, ProxyFault>? Decide { get; set; }

    /// <summary>How many requests were dropped or refused.</summary>
    public int Dropped => Volatile.Read(ref dropped);

    public async ValueTask DisposeAsync()
    {
        await stopping.CancelAsync();
        listener.Stop();
        try
        {
            await loop;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
        {
        }

        agent.Dispose();
        stopping.Dispose();
    }

    private async Task AcceptLoopAsync()
    {
        while (!stopping.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await listener.AcceptSocketAsync(stopping.Token);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
            {
                return;
            }

            _ = Task.Run(() => ServeAsync(socket));
        }
    }

    private async Task ServeAsync(Socket socket)
    {
        using var stream = new NetworkStream(socket, ownsSocket: true);
        var buffer = new List<byte>();
        var chunk = new byte[16384];
        try
        {
            while (!stopping.IsCancellationRequested)
            {
                // One request: the head up to a blank line, then Content-Length bytes of body.
                int end;
                while ((end = HeadEnd(buffer)) < 0)
                {
                    var read = await stream.ReadAsync(chunk, stopping.Token);
                    if (read == 0)
                    {
                        return;
                    }

                    buffer.AddRange(chunk.AsSpan(0, read));
                }

                var head = Encoding.ASCII.GetString([.. buffer.GetRange(0, end)]).Split("\r\n");
                var requestLine = head[0].Split(' ');
                var headers = head.Skip(1).Where(l => l.Contains(':', StringComparison.Ordinal))
                    .ToDictionary(l => l[..l.IndexOf(':', StringComparison.Ordinal)].Trim(), l => l[(l.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim(), StringComparer.OrdinalIgnoreCase);
                var length = headers.TryGetValue("Content-Length", out var text) ? int.Parse(text, System.Globalization.CultureInfo.InvariantCulture) : 0;
                while (buffer.Count < end + 4 + length)
                {
                    var read = await stream.ReadAsync(chunk, stopping.Token);
                    if (read == 0)
                    {
                        return;
                    }

                    buffer.AddRange(chunk.AsSpan(0, read));
                }

                var body = buffer.GetRange(end + 4, length).ToArray();
                buffer.RemoveRange(0, end + 4 + length);
                var method = requestLine[0];
                var target = requestLine[1];
                var path = target.Split('?')[0];
                var fault = Decide?.Invoke(method, path, Encoding.UTF8.GetString(body)) ?? ProxyFault.Forward;
                if (fault == ProxyFault.Refuse)
                {
                    Reset(socket);
                    return;
                }

                using var forward = new HttpRequestMessage(new HttpMethod(method), target);
                if (headers.TryGetValue("X-Consul-Token", out var token))
                {
                    forward.Headers.TryAddWithoutValidation("X-Consul-Token", token);
                }

                if (length > 0 || method is "PUT" or "POST")
                {
                    forward.Content = new ByteArrayContent(body);
                }

                using var answer = await agent.SendAsync(forward, stopping.Token);
                var bytes = await answer.Content.ReadAsByteArrayAsync(stopping.Token);
                if (fault == ProxyFault.DropAnswer)
                {
                    Reset(socket);
                    return;
                }

                var response = new StringBuilder();
                response.Append(System.Globalization.CultureInfo.InvariantCulture, $"HTTP/1.1 {(int)answer.StatusCode} {answer.ReasonPhrase}\r\n");
                foreach (var header in answer.Headers.Concat(answer.Content.Headers))
                {
                    if (header.Key.StartsWith("X-Consul", StringComparison.OrdinalIgnoreCase) || header.Key is "Content-Type" or "Date")
                    {
                        response.Append(System.Globalization.CultureInfo.InvariantCulture, $"{header.Key}: {string.Join(",", header.Value)}\r\n");
                    }
                }

                response.Append(System.Globalization.CultureInfo.InvariantCulture, $"Content-Length: {bytes.Length}\r\n\r\n");
                await stream.WriteAsync(Encoding.ASCII.GetBytes(response.ToString()), stopping.Token);
                await stream.WriteAsync(bytes, stopping.Token);
            }
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException or HttpRequestException)
        {
            // The client went away, or the agent could not be reached: the connection ends.
        }
    }

    /// <summary>Counts the drop and closes the connection with a reset, writing nothing.</summary>
    private void Reset(Socket socket)
    {
        Interlocked.Increment(ref dropped);
        try
        {
            socket.LingerState = new LingerOption(true, 0);
            socket.Close();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private static int HeadEnd(List<byte> buffer)
    {
        for (var i = 0; i + 3 < buffer.Count; i++)
        {
            if (buffer[i] == '\r' && buffer[i + 1] == '\n' && buffer[i + 2] == '\r' && buffer[i + 3] == '\n')
            {
                return i;
            }
        }

        return -1;
    }
}
