using System.Net;
using System.Net.Sockets;
using Dtask.Consul.Configuration;
using Dtask.Consul.Errors;

namespace Dtask.Consul.Tests;

public sealed class ErrorTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static Uri ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return new Uri($"http://127.0.0.1:{port}");
    }

    [Fact]
    public async Task A_read_from_an_unreachable_agent_is_retried_a_bounded_number_of_times()
    {
        using var client = new ConsulClient(new ConsulClientOptions
        {
            Address = ClosedPort(),
            Token = new ConsulToken("unreachable-secret"),
            ReadRetries = 2,
            ReadRetryDelay = TimeSpan.FromMilliseconds(10),
        });

        var error = await Assert.ThrowsAsync<ConsulUnreachableException>(() => client.Kv.GetAsync("dtask/x", cancellationToken: Ct));

        Assert.Equal(3, client.Requests.Requests);
        Assert.Contains("'dtask/x'", error.Message, StringComparison.Ordinal);
        Assert.Contains("cannot reach", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("unreachable-secret", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_write_to_an_unreachable_agent_is_never_retried()
    {
        using var client = new ConsulClient(new ConsulClientOptions { Address = ClosedPort(), ReadRetries = 5 });

        await Assert.ThrowsAsync<ConsulUnreachableException>(() => client.Kv.PutStringAsync("dtask/x", "v", cancellationToken: Ct));

        Assert.Equal(1, client.Requests.Requests);
        Assert.Equal(1, client.Requests.Writes);
    }

    [Fact]
    public async Task A_call_that_gets_no_answer_times_out_as_unreachable()
    {
        using var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start();
        var port = ((IPEndPoint)silent.LocalEndpoint).Port;
        using var client = new ConsulClient(new ConsulClientOptions
        {
            Address = new Uri($"http://127.0.0.1:{port}"),
            RequestTimeout = TimeSpan.FromMilliseconds(300),
            ReadRetries = 0,
        });

        var error = await Assert.ThrowsAsync<ConsulUnreachableException>(() => client.Kv.GetAsync("dtask/y", cancellationToken: Ct));

        Assert.Contains("did not answer within", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_answer_cut_off_halfway_is_unreachable_not_a_crash()
    {
        // An agent that sends the head of an answer, and part of its body, then resets the connection.
        using var broken = new TcpListener(IPAddress.Loopback, 0);
        broken.Start();
        var port = ((IPEndPoint)broken.LocalEndpoint).Port;
        var serving = Task.Run(async () =>
        {
            using var socket = await broken.AcceptSocketAsync(Ct);
            var buffer = new byte[4096];
            await socket.ReceiveAsync(buffer, SocketFlags.None, Ct);
            await socket.SendAsync("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n[{\"Key\":"u8.ToArray(), SocketFlags.None, Ct);
            socket.LingerState = new LingerOption(true, 0);
            socket.Close();
        }, Ct);
        using var client = new ConsulClient(new ConsulClientOptions { Address = new Uri($"http://127.0.0.1:{port}"), ReadRetries = 0 });

        var error = await Assert.ThrowsAsync<ConsulUnreachableException>(() => client.Kv.PutStringAsync("dtask/z", "v", cancellationToken: Ct));

        await serving;
        Assert.Contains("'dtask/z'", error.Message, StringComparison.Ordinal);
    }
}
