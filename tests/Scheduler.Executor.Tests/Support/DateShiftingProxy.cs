using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Dtask.Executor.Tests.Support;

/// <summary>
/// A TCP proxy on 127.0.0.1 in front of a real Consul agent that moves the <c>Date</c> header of every answer by an offset,
/// as an agent on the same wrong clock as its executor would stamp it (libfaketime cannot move a Go program's clock).
/// Everything else passes through byte for byte: an RFC 1123 date keeps its length, so bodies and lengths are untouched.
/// </summary>
public sealed class DateShiftingProxy : IAsyncDisposable
{
    private static readonly byte[] Header = Encoding.ASCII.GetBytes("\r\nDate: ");
    private const int DateLength = 29; // "Sat, 05 Dec 2026 01:21:00 GMT"
    private readonly TcpListener listener = new(IPAddress.Loopback, 0);
    private readonly Uri target;
    private readonly TimeSpan offset;
    private readonly CancellationTokenSource stopping = new();
    private readonly Task accepting;

    public DateShiftingProxy(Uri target, TimeSpan offset)
    {
        this.target = target;
        this.offset = offset;
        listener.Start();
        accepting = Task.Run(AcceptAsync);
    }

    public Uri Address => new($"http://127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}/");

    /// <summary>How many Date headers were moved.</summary>
    public int Shifted => Volatile.Read(ref shifted);

    private int shifted;

    private async Task AcceptAsync()
    {
        while (!stopping.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await listener.AcceptTcpClientAsync(stopping.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            _ = Task.Run(() => ServeAsync(client));
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        using (client)
        using (var agent = new TcpClient())
        {
            try
            {
                await agent.ConnectAsync(target.Host, target.Port, stopping.Token);
                var up = client.GetStream();
                var down = agent.GetStream();
                var requests = up.CopyToAsync(down, stopping.Token);
                var answers = PumpShiftedAsync(down, up);
                await Task.WhenAny(requests, answers);
            }
            catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
            {
                // A side closed.
            }
        }
    }

    private async Task PumpShiftedAsync(Stream from, Stream to)
    {
        var buffer = new byte[64 * 1024];
        while (true)
        {
            var read = await from.ReadAsync(buffer, stopping.Token);
            if (read == 0)
            {
                return;
            }

            Shift(buffer.AsSpan(0, read));
            await to.WriteAsync(buffer.AsMemory(0, read), stopping.Token);
        }
    }

    private void Shift(Span<byte> data)
    {
        var start = 0;
        while (start < data.Length)
        {
            var at = data[start..].IndexOf(Header);
            if (at < 0)
            {
                return;
            }

            var value = start + at + Header.Length;
            if (value + DateLength > data.Length)
            {
                return; // Split across reads: left as the agent wrote it.
            }

            var text = Encoding.ASCII.GetString(data.Slice(value, DateLength));
            if (DateTimeOffset.TryParseExact(text, "r", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var date))
            {
                var moved = (date + offset).ToString("r", CultureInfo.InvariantCulture);
                if (moved.Length == DateLength)
                {
                    Encoding.ASCII.GetBytes(moved, data.Slice(value, DateLength));
                    Interlocked.Increment(ref shifted);
                }
            }

            start = value + DateLength;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await stopping.CancelAsync();
        listener.Stop();
        await accepting;
        stopping.Dispose();
    }
}
