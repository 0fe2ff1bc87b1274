using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Dtask.Testing.Kubernetes;

/// <summary>One HTTP/1.1 request as read off a connection.</summary>
/// <param name="Method">The method, upper case.</param>
/// <param name="Target">The request target: path and query.</param>
/// <param name="Headers">The headers, by case-insensitive name.</param>
/// <param name="Body">The body, de-chunked.</param>
internal sealed record IncomingRequest(string Method, string Target, IReadOnlyDictionary<string, string> Headers, byte[] Body)
{
    public string Path => Target.Split('?', 2)[0];

    public string Query => Target.Split('?', 2) is [_, var query] ? query : "";

    public string? ContentType => Headers.GetValueOrDefault("Content-Type");
}

/// <summary>
/// The server side of one keep-alive HTTP/1.1 connection: reads requests, writes whole responses with a
/// <c>Content-Length</c>, or streams a chunked response one flushed chunk at a time, or cuts the connection.
/// </summary>
internal sealed class HttpConnection(Socket socket, TimeProvider time) : IAsyncDisposable
{
    private const int MaxHeaderBytes = 64 * 1024;
    private readonly NetworkStream stream = new(socket, ownsSocket: true);
    private readonly byte[] buffer = new byte[16 * 1024];
    private int start;
    private int end;

    /// <summary>The next request; null when the client closed the connection.</summary>
    public async Task<IncomingRequest?> ReadRequestAsync(CancellationToken cancellationToken)
    {
        var requestLine = await ReadLineAsync(cancellationToken).ConfigureAwait(false);
        if (requestLine is null)
        {
            return null;
        }

        var parts = requestLine.Split(' ');
        if (parts.Length != 3)
        {
            throw new IOException($"malformed request line: {requestLine}");
        }

        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var headerBytes = 0;
        while (await ReadLineAsync(cancellationToken).ConfigureAwait(false) is { Length: > 0 } line)
        {
            headerBytes += line.Length;
            if (headerBytes > MaxHeaderBytes)
            {
                throw new IOException("request headers too large");
            }

            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon > 0)
            {
                headers[line[..colon].Trim()] = line[(colon + 1)..].Trim();
            }
        }

        byte[] body;
        if (headers.TryGetValue("Transfer-Encoding", out var encoding) && encoding.Contains("chunked", StringComparison.OrdinalIgnoreCase))
        {
            body = await ReadChunkedBodyAsync(cancellationToken).ConfigureAwait(false);
        }
        else if (headers.TryGetValue("Content-Length", out var length))
        {
            body = await ReadExactlyAsync(int.Parse(length, CultureInfo.InvariantCulture), cancellationToken).ConfigureAwait(false);
        }
        else
        {
            body = [];
        }

        return new IncomingRequest(parts[0].ToUpperInvariant(), parts[1], headers, body);
    }

    /// <summary>A whole response with a <c>Content-Length</c>.</summary>
    public async Task WriteResponseAsync(HttpStatusCode code, string contentType, byte[] body, CancellationToken cancellationToken)
    {
        var head = $"HTTP/1.1 {(int)code} {Reason(code)}\r\nContent-Type: {contentType}\r\nContent-Length: {body.Length}\r\nDate: {time.GetUtcNow():R}\r\n\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head), cancellationToken).ConfigureAwait(false);
        await stream.WriteAsync(body, cancellationToken).ConfigureAwait(false);
        await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Sends the head of a chunked response at once, before any chunk.</summary>
    public async Task StartChunkedAsync(HttpStatusCode code, string contentType, CancellationToken cancellationToken)
    {
        var head = $"HTTP/1.1 {(int)code} {Reason(code)}\r\nContent-Type: {contentType}\r\nTransfer-Encoding: chunked\r\nCache-Control: no-cache, private\r\nDate: {time.GetUtcNow():R}\r\n\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head), cancellationToken).ConfigureAwait(false);
        await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>One non-empty chunk, flushed.</summary>
    public async Task WriteChunkAsync(byte[] data, CancellationToken cancellationToken)
    {
        await stream.WriteAsync(Encoding.ASCII.GetBytes(data.Length.ToString("x", CultureInfo.InvariantCulture) + "\r\n"), cancellationToken).ConfigureAwait(false);
        await stream.WriteAsync(data, cancellationToken).ConfigureAwait(false);
        await stream.WriteAsync("\r\n"u8.ToArray(), cancellationToken).ConfigureAwait(false);
        await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The last chunk: the response ends cleanly and the connection can carry the next request.</summary>
    public async Task EndChunkedAsync(CancellationToken cancellationToken)
    {
        await stream.WriteAsync("0\r\n\r\n"u8.ToArray(), cancellationToken).ConfigureAwait(false);
        await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Cuts the connection with a reset, mid-response: what a client sees when a network path dies.</summary>
    public void Abort()
    {
        socket.LingerState = new LingerOption(true, 0);
        socket.Close();
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync() => await stream.DisposeAsync().ConfigureAwait(false);

    private static string Reason(HttpStatusCode code) => code switch
    {
        HttpStatusCode.OK => "OK",
        HttpStatusCode.Created => "Created",
        HttpStatusCode.Accepted => "Accepted",
        HttpStatusCode.BadRequest => "Bad Request",
        HttpStatusCode.NotFound => "Not Found",
        HttpStatusCode.MethodNotAllowed => "Method Not Allowed",
        HttpStatusCode.Conflict => "Conflict",
        HttpStatusCode.Gone => "Gone",
        HttpStatusCode.UnsupportedMediaType => "Unsupported Media Type",
        HttpStatusCode.UnprocessableEntity => "Unprocessable Entity",
        HttpStatusCode.InternalServerError => "Internal Server Error",
        _ => code.ToString(),
    };

    private async Task<byte[]> ReadChunkedBodyAsync(CancellationToken cancellationToken)
    {
        using var body = new MemoryStream();
        while (true)
        {
            var sizeLine = await ReadLineAsync(cancellationToken).ConfigureAwait(false) ?? throw new IOException("truncated chunked body");
            var size = int.Parse(sizeLine.Split(';')[0].Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            if (size == 0)
            {
                while (await ReadLineAsync(cancellationToken).ConfigureAwait(false) is { Length: > 0 })
                {
                }

                return body.ToArray();
            }

            body.Write(await ReadExactlyAsync(size, cancellationToken).ConfigureAwait(false));
            await ReadLineAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task<byte[]> ReadExactlyAsync(int count, CancellationToken cancellationToken)
    {
        var result = new byte[count];
        var filled = 0;
        while (filled < count)
        {
            if (start == end && !await FillAsync(cancellationToken).ConfigureAwait(false))
            {
                throw new IOException("truncated body");
            }

            var take = Math.Min(count - filled, end - start);
            Array.Copy(buffer, start, result, filled, take);
            start += take;
            filled += take;
        }

        return result;
    }

    private async Task<string?> ReadLineAsync(CancellationToken cancellationToken)
    {
        using var line = new MemoryStream();
        while (true)
        {
            if (start == end && !await FillAsync(cancellationToken).ConfigureAwait(false))
            {
                return line.Length == 0 ? null : throw new IOException("truncated line");
            }

            var newline = Array.IndexOf(buffer, (byte)'\n', start, end - start);
            if (newline < 0)
            {
                line.Write(buffer, start, end - start);
                start = end;
                if (line.Length > MaxHeaderBytes)
                {
                    throw new IOException("line too long");
                }

                continue;
            }

            line.Write(buffer, start, newline - start);
            start = newline + 1;
            var text = Encoding.UTF8.GetString(line.GetBuffer(), 0, (int)line.Length);
            return text.TrimEnd('\r');
        }
    }

    private async Task<bool> FillAsync(CancellationToken cancellationToken)
    {
        start = 0;
        end = await stream.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        return end > 0;
    }
}
