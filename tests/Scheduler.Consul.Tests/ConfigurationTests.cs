using Dtask.Consul.Configuration;

namespace Dtask.Consul.Tests;

public sealed class ConfigurationTests
{
    public static TheoryData<string, Dictionary<string, string>, string, bool> Rows => new()
    {
        { "nothing set: local agent", new(), "http://127.0.0.1:8500/", true },
        { "host:port", new() { ["CONSUL_HTTP_ADDR"] = "consul.service:8501" }, "http://consul.service:8501/", true },
        { "host only gets the default port", new() { ["CONSUL_HTTP_ADDR"] = "10.1.2.3" }, "http://10.1.2.3:8500/", true },
        { "http URL", new() { ["CONSUL_HTTP_ADDR"] = "http://c1:8500" }, "http://c1:8500/", true },
        { "https URL", new() { ["CONSUL_HTTP_ADDR"] = "https://c1:8501" }, "https://c1:8501/", true },
        { "host:port with CONSUL_HTTP_SSL", new() { ["CONSUL_HTTP_ADDR"] = "c1:8501", ["CONSUL_HTTP_SSL"] = "true" }, "https://c1:8501/", true },
        { "SSL_VERIFY=false", new() { ["CONSUL_HTTP_ADDR"] = "https://c1:8501", ["CONSUL_HTTP_SSL_VERIFY"] = "false" }, "https://c1:8501/", false },
        { "SSL_VERIFY=0", new() { ["CONSUL_HTTP_ADDR"] = "https://c1:8501", ["CONSUL_HTTP_SSL_VERIFY"] = "0" }, "https://c1:8501/", false },
        { "seed CONSUL_HOST only", new() { ["CONSUL_HOST"] = "consul-a" }, "http://consul-a:8500/", true },
        { "seed CONSUL_HOST and CONSUL_PORT", new() { ["CONSUL_HOST"] = "consul-a", ["CONSUL_PORT"] = "9500" }, "http://consul-a:9500/", true },
        { "seed CONSUL_HOST with port", new() { ["CONSUL_HOST"] = "consul-a:7500" }, "http://consul-a:7500/", true },
        { "CONSUL_HTTP_ADDR wins over CONSUL_HOST", new() { ["CONSUL_HTTP_ADDR"] = "b:1", ["CONSUL_HOST"] = "a" }, "http://b:1/", true },
        { "IPv6 literal", new() { ["CONSUL_HTTP_ADDR"] = "[::1]:8500" }, "http://[::1]:8500/", true },
    };

    [Theory]
    [MemberData(nameof(Rows))]
    public void Address_and_verification_come_from_the_environment(string row, Dictionary<string, string> variables, string address, bool verify)
    {
        var options = ConsulEnvironment.Read(variables);

        Assert.True(address == options.Address.ToString(), $"{row}: got {options.Address}");
        Assert.Equal(verify, options.VerifyServerCertificate);
    }

    public static TheoryData<string, Dictionary<string, string>, string> BadRows => new()
    {
        { "unknown scheme", new() { ["CONSUL_HTTP_ADDR"] = "unix:///var/run/consul.sock" }, "CONSUL_HTTP_ADDR" },
        { "bad boolean", new() { ["CONSUL_HTTP_SSL"] = "yes please" }, "CONSUL_HTTP_SSL" },
        { "bad port", new() { ["CONSUL_HOST"] = "a", ["CONSUL_PORT"] = "99999" }, "CONSUL_PORT" },
        { "missing token file", new() { ["CONSUL_HTTP_TOKEN_FILE"] = "/nonexistent/dtask-token" }, "CONSUL_HTTP_TOKEN_FILE" },
    };

    [Theory]
    [MemberData(nameof(BadRows))]
    public void Invalid_variables_are_named_in_the_error(string row, Dictionary<string, string> variables, string variable)
    {
        var error = Assert.Throws<ConsulConfigurationException>(() => ConsulEnvironment.Read(variables));

        Assert.True(error.Message.Contains(variable, StringComparison.Ordinal), $"{row}: {error.Message}");
    }

    [Fact]
    public void Tls_files_and_token_are_read()
    {
        var options = ConsulEnvironment.Read(new Dictionary<string, string>
        {
            ["CONSUL_HTTP_TOKEN"] = "s3cr3t-token",
            ["CONSUL_CACERT"] = "/etc/consul/ca.pem",
            ["CONSUL_CLIENT_CERT"] = "/etc/consul/client.pem",
            ["CONSUL_CLIENT_KEY"] = "/etc/consul/client-key.pem",
        });

        Assert.Equal("s3cr3t-token", options.Token?.Reveal());
        Assert.Equal("/etc/consul/ca.pem", options.CaCertificateFile);
        Assert.Equal("/etc/consul/client.pem", options.ClientCertificateFile);
        Assert.Equal("/etc/consul/client-key.pem", options.ClientKeyFile);
    }

    [Fact]
    public void The_token_file_wins_over_the_token_variable_and_is_trimmed()
    {
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, "  from-file-token\n");
            var options = ConsulEnvironment.Read(new Dictionary<string, string>
            {
                ["CONSUL_HTTP_TOKEN"] = "from-variable",
                ["CONSUL_HTTP_TOKEN_FILE"] = file,
            });

            Assert.Equal("from-file-token", options.Token?.Reveal());
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void Options_can_override_what_the_environment_says()
    {
        var options = ConsulEnvironment.Read(new Dictionary<string, string> { ["CONSUL_HTTP_ADDR"] = "a:1" })
            with { Address = new Uri("https://b:2"), Token = new ConsulToken("t") };

        Assert.Equal("https://b:2/", options.Address.ToString());
        Assert.True(options.UsesTls);
    }

    [Fact]
    public void The_token_never_appears_in_printed_options_or_clients()
    {
        const string secret = "9f1e2d3c-token-that-must-stay-secret";
        var options = ConsulEnvironment.Read(new Dictionary<string, string> { ["CONSUL_HTTP_TOKEN"] = secret });
        using var client = new ConsulClient(options);

        Assert.DoesNotContain(secret, options.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain(secret, options.Token!.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain(secret, client.ToString(), StringComparison.Ordinal);
        Assert.Contains("[redacted]", options.ToString(), StringComparison.Ordinal);
    }
}
