using Dtask.Consul.Configuration;
using Dtask.Consul.Errors;
using Dtask.Consul.Tests.Fixtures;
using Dtask.Testing;

namespace Dtask.Consul.Tests;

public sealed class TlsTests(TlsAgentFixture tls) : IClassFixture<TlsAgentFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task With_the_ca_file_the_https_agent_is_trusted()
    {
        using var client = new ConsulClient(tls.Agent.ClientOptions() with { ClientCertificateFile = null, ClientKeyFile = null });
        var key = TestKvPrefix.New() + "k";

        await client.Kv.PutStringAsync(key, "over tls", cancellationToken: Ct);

        Assert.Equal("https", tls.Agent.Address.Scheme);
        Assert.Equal("over tls", (await client.Kv.GetAsync(key, cancellationToken: Ct)).Value!.ValueAsString());
    }

    [Fact]
    public async Task Without_the_ca_file_the_error_says_the_certificate_was_not_trusted()
    {
        using var client = new ConsulClient(new ConsulClientOptions { Address = tls.Agent.Address, ReadRetries = 0 });

        var error = await Assert.ThrowsAsync<ConsulTlsException>(() => client.Kv.GetAsync("dtask/x", cancellationToken: Ct));
        TestContext.Current.TestOutputHelper?.WriteLine(error.Message);

        Assert.Contains("certificate", error.Message, StringComparison.Ordinal);
        Assert.Contains("was not trusted", error.Message, StringComparison.Ordinal);
        Assert.Contains(tls.Agent.Address.Authority, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_environment_configures_tls_and_ssl_verify_false_skips_verification()
    {
        var variables = new Dictionary<string, string> { ["CONSUL_HTTP_ADDR"] = tls.Agent.Address.Authority, ["CONSUL_HTTP_SSL"] = "true" };
        using var verified = new ConsulClient(ConsulEnvironment.Read(new Dictionary<string, string>(variables) { ["CONSUL_CACERT"] = tls.Agent.CaFile! }));
        using var unverified = new ConsulClient(ConsulEnvironment.Read(new Dictionary<string, string>(variables) { ["CONSUL_HTTP_SSL_VERIFY"] = "false" }));

        Assert.NotEmpty((await verified.Status.LeaderAsync(Ct)).Value);
        Assert.NotEmpty((await unverified.Status.LeaderAsync(Ct)).Value);
    }
}

public sealed class MutualTlsTests(MutualTlsAgentFixture mtls) : IClassFixture<MutualTlsAgentFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task An_agent_with_verify_incoming_accepts_a_client_certificate_signed_by_its_ca()
    {
        using var client = mtls.Agent.CreateClient();
        var key = TestKvPrefix.New() + "k";

        await client.Kv.PutStringAsync(key, "mutual", cancellationToken: Ct);

        Assert.Equal("mutual", (await client.Kv.GetAsync(key, cancellationToken: Ct)).Value!.ValueAsString());
    }

    [Fact]
    public async Task An_agent_with_verify_incoming_refuses_a_client_without_a_certificate()
    {
        using var client = new ConsulClient(mtls.Agent.ClientOptions() with { ClientCertificateFile = null, ClientKeyFile = null, ReadRetries = 0 });

        var error = await Assert.ThrowsAsync<ConsulTlsException>(() => client.Kv.GetAsync("dtask/x", cancellationToken: Ct));
        TestContext.Current.TestOutputHelper?.WriteLine(error.Message);

        Assert.Contains("client certificate", error.Message, StringComparison.Ordinal);
    }
}
