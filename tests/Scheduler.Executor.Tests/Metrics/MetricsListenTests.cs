using System.Net;
using System.Net.Sockets;
using Dtask.Executor.Metrics;
using Dtask.Executor.Tests.Daemon;
using Dtask.Executor.Tests.Support;

namespace Dtask.Executor.Tests.Metrics;

/// <summary><c>dtask executor --metrics-listen</c>: what it accepts, and bad values refused before Consul is touched.</summary>
public sealed class MetricsListenTests(ConsulFixture consul)
{
    [Theory]
    [InlineData("0.0.0.0:9464", "+", 9464)]
    [InlineData(":9464", "+", 9464)]
    [InlineData("127.0.0.1:0", "127.0.0.1", 0)]
    [InlineData("[::1]:9464", "::1", 9464)]
    [InlineData("node-1.example:9100", "node-1.example", 9100)]
    public void Host_and_port_are_parsed(string text, string host, int port) =>
        Assert.Equal(new MetricsEndpoint(host, port), MetricsEndpoint.Parse(text));

    [Theory]
    [InlineData("9464")]
    [InlineData("localhost:http")]
    [InlineData("127.0.0.1:70000")]
    [InlineData("127.0.0.1:-1")]
    public void Other_text_is_refused_naming_the_flag(string text) =>
        Assert.Contains($"--metrics-listen '{text}' is not HOST:PORT", Assert.Throws<FormatException>(() => MetricsEndpoint.Parse(text)).Message, StringComparison.Ordinal);

    [Fact]
    public async Task A_bad_address_exits_78_and_a_taken_port_stops_the_executor_before_it_touches_consul()
    {
        await using var world = new DaemonWorld(consul.Agent.Address, consul.NewClient());
        // Nothing listens on port 9: an executor that got as far as Consul would retry there forever.
        world.Consul = new Uri("http://127.0.0.1:9");
        var bad = world.Start("metrics-bad", null, "--metrics-listen", "nonsense");
        Assert.Equal(78, await bad.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains(bad.Lines, l => l.Contains("--metrics-listen 'nonsense' is not HOST:PORT", StringComparison.Ordinal));

        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var port = ((IPEndPoint)taken.LocalEndpoint).Port;
        var busy = world.Start("metrics-busy", null, "--metrics-listen", $"127.0.0.1:{port}");
        Assert.NotEqual(0, await busy.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains(busy.Lines, l => l.Contains($"--metrics-listen 127.0.0.1:{port}: cannot listen", StringComparison.Ordinal));
    }
}
