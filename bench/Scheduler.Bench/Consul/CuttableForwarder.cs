using System.Net;
using System.Net.Sockets;

namespace Dtask.Bench.Consul;

/// <summary>
/// A TCP forwarder on 127.0.0.1 in front of the agent, for one executor: forwards every connection both ways until
/// <see cref="Cut"/>, which resets every open connection and refuses new ones — from Consul's side, the executor is gone
/// (no renewals, no claims, no stamps) while its registration stays until its sessions expire.
/// </summary>
internal sealed class CuttableForwarder : IAsyncDisposable
{
    private readonly TcpListener listener = new(IPAddress.Loopback, 0);
    private readonly IPEndPoint agent;
    private readonly CancellationTokenSource cut = new();
    private readonly List<Socket> open = [];
    private readonly Lock gate = new();
    private readonly Task accepting;

    public CuttableForwarder(Uri agentAddress)
    {
        ArgumentNullException.ThrowIfNull(agentAddress);
        agent = new IPEndPoint(IPAddress.Parse(agentAddress.Host), agentAddress.Port);
        listener.Start(512);
        Address = new Uri($"http://127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}/");
        accepting = Task.Run(AcceptAsync);
    }

    /// <summary>Where the executor sends its requests.</summary>
    public Uri Address { get; }

    /// <summary>Resets every connection and refuses new ones.</summary>
    public void Cut()
    {
        cut.Cancel();
        listener.Stop();
        lock (gate)
        {
            foreach (var socket in open)
            {
                try
                {
                    socket.LingerState = new LingerOption(true, 0); // RST, as a machine that is gone
                    socket.Close();
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException)
                {
                    // Closed already.
                }
            }

            open.Clear();
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        Cut();
        try
        {
            await accepting.ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
        {
        }

        cut.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (!cut.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await listener.AcceptSocketAsync(cut.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
            {
                return;
            }

            _ = Task.Run(() => ForwardAsync(client));
        }
    }

    private async Task ForwardAsync(Socket client)
    {
        var upstream = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        client.NoDelay = true;
        lock (gate)
        {
            if (cut.IsCancellationRequested)
            {
                client.Close(0);
                upstream.Dispose();
                return;
            }

            open.Add(client);
            open.Add(upstream);
        }

        try
        {
            await upstream.ConnectAsync(agent, cut.Token).ConfigureAwait(false);
            await Task.WhenAny(PumpAsync(client, upstream), PumpAsync(upstream, client)).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
        {
            // Cut, or either side closed.
        }
        finally
        {
            lock (gate)
            {
                open.Remove(client);
                open.Remove(upstream);
            }

            client.Dispose();
            upstream.Dispose();
        }
    }

    private async Task PumpAsync(Socket from, Socket to)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            while (true)
            {
                var read = await from.ReceiveAsync(buffer, SocketFlags.None, cut.Token).ConfigureAwait(false);
                if (read == 0)
                {
                    return;
                }

                await to.SendAsync(buffer.AsMemory(0, read), SocketFlags.None, cut.Token).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
        {
            // Cut, or either side closed.
        }
    }
}
