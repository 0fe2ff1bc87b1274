using System.Text.Json;
using Dtask.Deploy.Tests.Support;
using YamlDotNet.RepresentationModel;

namespace Dtask.Deploy.Tests;

/// <summary>
/// The Butane configs of executor nodes. Butane itself is not installed here, so they are checked as YAML, against
/// the systemd unit they embed, and, rendered through Terraform's templatefile() as terraform/modules/nodes does.
/// </summary>
public sealed class ButaneTests
{
    public static TheoryData<string, string, string, string> Configs => new()
    {
        // file, variant, version, where the binary is installed
        { "executor.bu", "flatcar", "1.0.0", "/opt/bin/dtask" },
        { "executor.fcos.bu", "fcos", "1.5.0", "/usr/local/bin/dtask" },
    };

    private static readonly string UnitText = RepositoryFiles.ReadText("deploy", "systemd", "dtask-executor.service");

    [Theory]
    [MemberData(nameof(Configs))]
    public void The_config_is_YAML_of_its_variant_and_version(string file, string variant, string version, string binary)
    {
        var butane = Load(file);

        Assert.Equal(variant, butane.Scalar("variant"));
        Assert.Equal(version, butane.Scalar("version"));
        var binaryFile = FileAt(butane, binary);
        Assert.Equal("0755", binaryFile.Scalar("mode"));
        Assert.NotNull(binaryFile.Scalar("contents.source"));
        Assert.StartsWith("sha512-", binaryFile.Scalar("contents.verification.hash"), StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Configs))]
    public void The_embedded_unit_is_deploy_systemd_dtask_executor_service(string file, string variant, string version, string binary)
    {
        _ = (variant, version, binary);
        var unit = ExecutorUnit(Load(file));

        Assert.Equal(UnitText, unit.Scalar("contents"));
        Assert.Equal("true", unit.Scalar("enabled"));
    }

    [Theory]
    [MemberData(nameof(Configs))]
    public void The_service_starts_the_installed_binary(string file, string variant, string version, string binary)
    {
        _ = (variant, version);
        var unit = ExecutorUnit(Load(file));
        var execStart = UnitFile.Parse(UnitText).Single("Service", "ExecStart")!;
        foreach (var dropIn in unit.Sequence("dropins"))
        {
            var overridden = UnitFile.Parse(dropIn.Scalar("contents")!).All("Service", "ExecStart");
            if (overridden.Count > 0)
            {
                Assert.Equal("", overridden[0]);
                execStart = overridden[^1];
            }
        }

        Assert.StartsWith(binary + " executor", execStart, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Configs))]
    public void The_node_gets_the_user_the_settings_and_a_root_only_file_per_credential(string file, string variant, string version, string binary)
    {
        _ = (variant, version, binary);
        var butane = Load(file);

        var user = Assert.Single(butane.Sequence("passwd.users"), u => u.Scalar("name") == "dtask");
        Assert.Equal("true", user.Scalar("system"));

        var env = FileAt(butane, "/etc/dtask/executor.env");
        Assert.Equal("0644", env.Scalar("mode"));
        Assert.Contains("CONSUL_HTTP_ADDR=", env.Scalar("contents.inline"), StringComparison.Ordinal);
        Assert.Contains("CONSUL_CACERT=/etc/dtask/tls/consul-ca.pem", env.Scalar("contents.inline"), StringComparison.Ordinal);
        Assert.NotNull(FileAt(butane, "/etc/dtask/tls/consul-ca.pem").Scalar("contents.inline"));

        var credentials = UnitFile.Parse(UnitText).All("Service", "LoadCredential");
        Assert.NotEmpty(credentials);
        foreach (var credential in credentials)
        {
            var source = credential[(credential.IndexOf(':', StringComparison.Ordinal) + 1)..];
            Assert.Equal("0600", FileAt(butane, source).Scalar("mode"));
        }
    }

    [Fact]
    public async Task Terraform_templatefile_renders_a_config_with_every_placeholder_filled()
    {
        var terraform = ExternalTool.RequireOrSkip("terraform", "rendering the Butane template with templatefile()");
        using var temp = new TempDirectory();
        var values = new Dictionary<string, string>
        {
            ["dtask_binary_url"] = "https://downloads.example.com/dtask",
            ["dtask_binary_sha512"] = "abc123",
            ["consul_http_addr"] = "https://consul.internal:8501",
            ["consul_ca_pem"] = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
            ["consul_token"] = "0b1c5e8e-8f5a-4a4e-9d7e-3f1b2c3d4e5f",
            ["slack_webhook"] = "https://hooks.example.com/T0/B0/x\"y",
            ["datadog_api_key"] = "",
            ["executor_args"] = "--prefix dtask/ --labels role=worker",
            ["notification_env"] = "SLACK_WEBHOOK_FILE=/run/credentials/dtask-executor.service/slack-webhook\nDD_API_KEY_FILE=/run/credentials/dtask-executor.service/datadog-api-key",
        };
        var template = RepositoryRoot.Combine("deploy", "butane", "executor.bu");
        var expression = $"jsonencode(templatefile({JsonSerializer.Serialize(template)}, jsondecode({JsonSerializer.Serialize(JsonSerializer.Serialize(values))})))";

        var run = await ExternalTool.RunAsync(terraform, ["console"], workingDirectory: temp.Path, standardInput: expression + "\n");

        Assert.True(run.ExitCode == 0, run.Describe());
        // The console prints the JSON text as an HCL string literal; HCL's escapes are JSON's, plus $${ and %%{.
        var rendered = JsonSerializer.Deserialize<string>(JsonSerializer.Deserialize<string>(run.Output.Trim())!)!;
        Assert.DoesNotContain("${", rendered, StringComparison.Ordinal);
        var butane = Yaml.LoadSingle(rendered);
        Assert.Equal(UnitText, ExecutorUnit(butane).Scalar("contents"));
        Assert.Equal(values["consul_token"], FileAt(butane, "/etc/dtask/consul-token").Scalar("contents.inline"));
        Assert.Equal(values["slack_webhook"], FileAt(butane, "/etc/dtask/slack-webhook").Scalar("contents.inline"));
        Assert.Equal("", FileAt(butane, "/etc/dtask/datadog-api-key").Scalar("contents.inline"));
        Assert.Equal(values["consul_ca_pem"], FileAt(butane, "/etc/dtask/tls/consul-ca.pem").Scalar("contents.inline"));
        Assert.Equal("sha512-abc123", FileAt(butane, "/opt/bin/dtask").Scalar("contents.verification.hash"));
        var env = FileAt(butane, "/etc/dtask/executor.env").Scalar("contents.inline")!.Split('\n');
        Assert.Contains("CONSUL_HTTP_ADDR=https://consul.internal:8501", env);
        Assert.Contains("DTASK_EXECUTOR_ARGS=--prefix dtask/ --labels role=worker", env);
        Assert.Contains("SLACK_WEBHOOK_FILE=/run/credentials/dtask-executor.service/slack-webhook", env);
        Assert.Contains("DD_API_KEY_FILE=/run/credentials/dtask-executor.service/datadog-api-key", env);
    }

    internal static YamlMappingNode ExecutorUnit(YamlNode butane) => Assert.IsType<YamlMappingNode>(
        Assert.Single(butane.Sequence("systemd.units"), u => u.Scalar("name") == "dtask-executor.service"));

    private static YamlMappingNode Load(string file) => Yaml.LoadSingle(RepositoryFiles.ReadText("deploy", "butane", file));

    private static YamlNode FileAt(YamlNode butane, string path) =>
        Assert.Single(butane.Sequence("storage.files"), f => f.Scalar("path") == path);
}
