using System.Net;
using Dtask.Consul.Configuration;
using Dtask.Operator.Health;
using Dtask.Operator.Hosting;
using Dtask.Operator.Sources.Directory;
using Dtask.Operator.Sources.Kubernetes;
using Dtask.Operator.Tests.Support;
using Dtask.Testing.Kubernetes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Dtask.Operator.Tests.Kubernetes;

/// <summary><c>/healthz</c>, <c>/readyz</c> and <c>/metrics</c> of the operator's host, for both sources.</summary>
public sealed class HealthEndpointTests(ConsulFixture consul)
{
    private static readonly HealthOptions Loopback = new("127.0.0.1", 0);
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task<(HttpStatusCode Code, string Body)> GetAsync(IHost host, string path)
    {
        var port = await host.Services.GetRequiredService<HealthServer>().Port;
        using var http = new HttpClient();
        using var response = await http.GetAsync(new Uri($"http://127.0.0.1:{port}{path}"), Ct);
        return (response.StatusCode, (await response.Content.ReadAsStringAsync(Ct)).Trim());
    }

    private static async Task StopAsync(IHost host)
    {
        await host.StopAsync(CancellationToken.None);
        host.Dispose();
    }

    [Fact]
    public async Task Healthz_answers_while_readyz_says_503_until_Consul_answers()
    {
        await using var server = KubernetesApiServer.Start();
        var unreachable = new ConsulClientOptions { Address = new Uri("http://127.0.0.1:1") };
        var host = OperatorHost.BuildKubernetesOperator(unreachable, ConsulFixture.NewLayout(), server.ClientConfiguration(),
            KubernetesScenario.Options("operator-a"), LogLevel.None, Loopback);
        await host.StartAsync(Ct);
        try
        {
            Assert.Equal((HttpStatusCode.OK, "ok"), await GetAsync(host, "/healthz"));
            Assert.Equal((HttpStatusCode.ServiceUnavailable, "waiting for Consul"), await GetAsync(host, "/readyz"));
            Assert.Equal(HttpStatusCode.NotFound, (await GetAsync(host, "/other")).Code);
            var (code, metrics) = await GetAsync(host, "/metrics");
            Assert.Equal(HttpStatusCode.OK, code);
            Assert.Contains("dtask_operator_leader{source=\"kubernetes\"} 0", metrics, StringComparison.Ordinal);
        }
        finally
        {
            await StopAsync(host);
        }
    }

    [Fact]
    public async Task Readyz_says_200_once_the_kubernetes_source_has_listed()
    {
        await using var server = KubernetesApiServer.Start();
        var host = OperatorHost.BuildKubernetesOperator(consul.Agent.ClientOptions(), ConsulFixture.NewLayout(), server.ClientConfiguration(),
            KubernetesScenario.Options("operator-a"), LogLevel.None, Loopback);
        await host.StartAsync(Ct);
        try
        {
            var service = host.Services.GetRequiredService<KubernetesOperator>();
            await Eventually.TrueAsync(() => service.Lists >= 1, "the first list");
            Assert.Equal((HttpStatusCode.OK, "ok"), await GetAsync(host, "/readyz"));
            var (code, metrics) = await GetAsync(host, "/metrics");
            Assert.Equal(HttpStatusCode.OK, code);
            Assert.Contains("dtask_operator_leader{source=\"kubernetes\"} 1", metrics, StringComparison.Ordinal);
        }
        finally
        {
            await StopAsync(host);
        }
    }

    [Fact]
    public async Task Readyz_says_200_once_the_directory_source_has_reconciled()
    {
        using var folder = new TempDirectory();
        folder.Write("backup.yaml", Manifest.Yaml("ops", "backup"));
        var host = OperatorHost.BuildDirectoryOperator(consul.Agent.ClientOptions(), ConsulFixture.NewLayout(),
            new DirectorySourceOptions(folder.Path) { LockDelay = TimeSpan.Zero, SessionTtl = TimeSpan.FromSeconds(10) }, LogLevel.None, Loopback);
        await host.StartAsync(Ct);
        try
        {
            var service = host.Services.GetRequiredService<DirectoryOperator>();
            await Eventually.TrueAsync(() => service.Reconciliations >= 1, "the first reconcile");
            Assert.Equal((HttpStatusCode.OK, "ok"), await GetAsync(host, "/readyz"));
        }
        finally
        {
            await StopAsync(host);
        }
    }

    [Fact]
    public async Task Invalid_options_stop_the_host_at_start()
    {
        await using var server = KubernetesApiServer.Start();
        using var host = OperatorHost.BuildKubernetesOperator(consul.Agent.ClientOptions(), ConsulFixture.NewLayout(), server.ClientConfiguration(),
            KubernetesScenario.Options("operator-a") with { RenewDeadline = TimeSpan.FromMinutes(1) }, LogLevel.None);

        var refused = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync(Ct));

        Assert.Contains("leader election needs 0 < retry period < renew deadline < lease duration", refused.Failures);
    }
}
