using System.Buffers;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Dtask.Chaos.Hosts;

/// <summary>Which transaction answer a <see cref="NodeGateway"/> loses.</summary>
public enum LostAnswer
{
    /// <summary>A claim: a <c>PUT /v1/txn</c> whose operations take a lock.</summary>
    Claim,

    /// <summary>A finish: a <c>PUT /v1/txn</c> that writes a history record (or releases a lock) and takes none.</summary>
    Finish,
}

/// <summary>
/// A TCP proxy in front of a Consul server, standing for the executor's own agent: it listens on the host end of the
/// executor's veth pair and passes bytes through, with two faults. (1) It stamps the <c>Date</c> header of every answer
/// with its own clock offset (<see cref="ClockOffset"/>), as an agent sharing the executor's wrong host clock would
/// (libfaketime cannot move a Go program's clock). (2) Armed with <see cref="LoseNextAsync"/>, it forwards one claim or
/// finish transaction, lets Consul commit and answer, and then resets the executor's connection instead of returning the
/// answer.
/// </summary>
public sealed class NodeGateway : IAsyncDisposable
{
    private static readonly byte[] DateHeader = Encoding.ASCII.GetBytes("\r\nDate: ");
    private static readonly byte[] TxnRequest = Encoding.ASCII.GetBytes("PUT /v1/txn");
    private const int DateLength = 29;
    private readonly TcpListener listener;
    private readonly Uri target;
    private readonly CancellationTokenSource stopping = new();
    private readonly Task accepting;
    private readonly Lock gate = new();
    private (LostAnswer Kind, TaskCompletionSource<string> Done, Func<bool> MayLose)? armed;
    private long offsetTicks;
    private int disposed;

    /// <summary>Listens on <paramref name="address"/> (a free port) and forwards to <paramref name="target"/>.</summary>
    public NodeGateway(IPAddress address, Uri target)
    {
        this.target = target ?? throw new ArgumentNullException(nameof(target));
        listener = new TcpListener(address ?? throw new ArgumentNullException(nameof(address)), 0);
        listener.Start();
        accepting = Task.Run(AcceptAsync);
    }

    /// <summary>The address the executor is given as <c>CONSUL_HTTP_ADDR</c>.</summary>
    public Uri Address
    {
        get
        {
            var endpoint = (IPEndPoint)listener.LocalEndpoint;
            return new Uri($"http://{endpoint.Address}:{endpoint.Port.ToString(CultureInfo.InvariantCulture)}");
        }
    }

    /// <summary>The offset of the agent's clock, applied to the <c>Date</c> header of every answer.</summary>
    public TimeSpan ClockOffset
    {
        get => TimeSpan.FromTicks(Interlocked.Read(ref offsetTicks));
        set => Interlocked.Exchange(ref offsetTicks, value.Ticks);
    }

    /// <summary>
    /// Loses the answer of the next transaction of <paramref name="kind"/>: the request reaches Consul, which commits and
    /// answers; the executor's connection is reset instead. Completes with a description of the lost request, or null
    /// when none came within <paramref name="within"/>.
    /// </summary>
    /// <param name="kind">Which transaction.</param>
    /// <param name="within">How long to wait for one.</param>
    /// <param name="mayLose">Asked once a fitting answer is in hand: true to lose it (several gateways armed at once lose one answer between them).</param>
    /// <param name="cancellationToken">Disarms the gateway (the result is then null).</param>
    public async Task<string?> LoseNextAsync(LostAnswer kind, TimeSpan within, Func<bool> mayLose, CancellationToken cancellationToken)
    {
        var done = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (gate)
        {
            armed = (kind, done, mayLose);
        }

        try
        {
            return await done.Task.WaitAsync(within, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            return null;
        }
        catch (OperationCanceledException)
        {
            return null;
        }
        finally
        {
            lock (gate)
            {
                if (armed?.Done == done)
                {
                    armed = null;
                }
            }
        }
    }

    private async Task AcceptAsync()
    {
        while (!stopping.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await listener.AcceptSocketAsync(stopping.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            _ = Task.Run(() => ServeAsync(client));
        }
    }

    private async Task ServeAsync(Socket client)
    {
        using var upstream = new Socket(SocketType.Stream, ProtocolType.Tcp);
        using var clientSocket = client;
        var exchange = new Exchange();
        try
        {
            await upstream.ConnectAsync(target.Host, target.Port, stopping.Token).ConfigureAwait(false);
            var requests = PumpRequestsAsync(client, upstream, exchange);
            var answers = PumpAnswersAsync(upstream, client, exchange);
            await Task.WhenAny(requests, answers).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // A side closed.
        }
    }

    /// <summary>The request in flight on one connection (HTTP/1.1: one at a time).</summary>
    private sealed class Exchange
    {
        public readonly System.Buffers.ArrayBufferWriter<byte> Request = new();
        public volatile bool Answering = true;
    }

    private async Task PumpRequestsAsync(Socket from, Socket to, Exchange exchange)
    {
        var buffer = new byte[64 * 1024];
        while (true)
        {
            var read = await from.ReceiveAsync(buffer, SocketFlags.None, stopping.Token).ConfigureAwait(false);
            if (read == 0)
            {
                to.Shutdown(SocketShutdown.Send);
                return;
            }

            lock (exchange)
            {
                if (exchange.Answering)
                {
                    // The previous answer has begun: these bytes start the next request.
                    exchange.Request.Clear();
                    exchange.Answering = false;
                }

                if (exchange.Request.WrittenCount < 256 * 1024)
                {
                    exchange.Request.Write(buffer.AsSpan(0, read));
                }
            }

            await SendAllAsync(to, buffer.AsMemory(0, read)).ConfigureAwait(false);
        }
    }

    private async Task PumpAnswersAsync(Socket from, Socket to, Exchange exchange)
    {
        var buffer = new byte[64 * 1024];
        while (true)
        {
            var read = await from.ReceiveAsync(buffer, SocketFlags.None, stopping.Token).ConfigureAwait(false);
            if (read == 0)
            {
                to.Shutdown(SocketShutdown.Send);
                return;
            }

            byte[] request = [];
            lock (exchange)
            {
                if (!exchange.Answering)
                {
                    exchange.Answering = true;
                    request = exchange.Request.WrittenSpan.ToArray();
                }
            }

            if (request.Length > 0 && Lose(request) is { } lost)
            {
                // Consul committed and answered: the executor gets a reset instead of the answer.
                to.LingerState = new LingerOption(true, 0);
                to.Close();
                from.Close();
                lost.Done.TrySetResult(lost.Description);
                return;
            }

            ShiftDates(buffer.AsSpan(0, read));
            await SendAllAsync(to, buffer.AsMemory(0, read)).ConfigureAwait(false);
        }
    }

    private (TaskCompletionSource<string> Done, string Description)? Lose(byte[] request)
    {
        lock (gate)
        {
            if (armed is not { } target || !request.AsSpan().StartsWith(TxnRequest))
            {
                return null;
            }

            var text = Encoding.UTF8.GetString(request);
            var locks = text.Contains("\"Verb\":\"lock\"", StringComparison.Ordinal);
            var writesHistory = text.Contains("/history/", StringComparison.Ordinal) || text.Contains("\"Verb\":\"unlock\"", StringComparison.Ordinal);
            var kind = locks ? LostAnswer.Claim : writesHistory ? LostAnswer.Finish : (LostAnswer?)null;
            if (kind != target.Kind || !target.MayLose())
            {
                return null;
            }

            armed = null;
            return (target.Done, $"{target.Kind.ToString().ToLowerInvariant()} transaction on {FirstKey(text)} ({request.Length} bytes) committed; answer replaced by a connection reset");
        }
    }

    private static string FirstKey(string text)
    {
        const string Key = "\"Key\":\"";
        var at = text.IndexOf(Key, StringComparison.Ordinal);
        if (at < 0)
        {
            return "?";
        }

        var end = text.IndexOf('"', at + Key.Length);
        return end < 0 ? "?" : text[(at + Key.Length)..end];
    }

    private void ShiftDates(Span<byte> data)
    {
        var offset = ClockOffset;
        if (offset == TimeSpan.Zero)
        {
            return;
        }

        var start = 0;
        while (start < data.Length)
        {
            var at = data[start..].IndexOf(DateHeader);
            if (at < 0)
            {
                return;
            }

            var value = start + at + DateHeader.Length;
            if (value + DateLength > data.Length)
            {
                return;
            }

            var text = Encoding.ASCII.GetString(data.Slice(value, DateLength));
            if (DateTimeOffset.TryParseExact(text, "r", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var date))
            {
                var moved = (date + offset).ToString("r", CultureInfo.InvariantCulture);
                if (moved.Length == DateLength)
                {
                    Encoding.ASCII.GetBytes(moved, data.Slice(value, DateLength));
                }
            }

            start = value + DateLength;
        }
    }

    private async Task SendAllAsync(Socket socket, ReadOnlyMemory<byte> data)
    {
        while (!data.IsEmpty)
        {
            var sent = await socket.SendAsync(data, SocketFlags.None, stopping.Token).ConfigureAwait(false);
            data = data[sent..];
        }
    }

    /// <summary>Stops listening and closes every connection.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref disposed, 1) == 1)
        {
            return;
        }

        await stopping.CancelAsync().ConfigureAwait(false);
        listener.Stop();
        await accepting.ConfigureAwait(false);
        stopping.Dispose();
    }
}
