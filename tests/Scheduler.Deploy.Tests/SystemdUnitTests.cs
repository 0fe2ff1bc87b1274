using Dtask.Deploy.Tests.Support;

namespace Dtask.Deploy.Tests;

/// <summary>The systemd units in deploy/systemd, checked by systemd itself and against what the executor needs.</summary>
public sealed class SystemdUnitTests
{
    public static TheoryData<string> Units => ["dtask-executor.service", "dtask-operator.service"];

    [Theory]
    [MemberData(nameof(Units))]
    public async Task Systemd_analyze_verify_prints_nothing(string unit)
    {
        var verify = ExternalTool.RequireOrSkip("systemd-analyze", "`systemd-analyze verify` of the units");
        using var temp = new TempDirectory();
        var text = WithExecutable(RepositoryFiles.ReadText("deploy", "systemd", unit), FakeBinary(temp));
        var path = temp.Write(unit, text);

        var run = await ExternalTool.RunAsync(verify, ["verify", path], workingDirectory: temp.Path);

        Assert.True(run.ExitCode == 0 && run.Output.Length == 0 && run.Error.Length == 0, run.Describe());
    }

    [Fact]
    public async Task Systemd_analyze_verify_accepts_the_executor_unit_with_the_Flatcar_drop_in()
    {
        var verify = ExternalTool.RequireOrSkip("systemd-analyze", "`systemd-analyze verify` of the Flatcar drop-in");
        var butane = Yaml.LoadSingle(RepositoryFiles.ReadText("deploy", "butane", "executor.bu"));
        var unit = ButaneTests.ExecutorUnit(butane);
        var dropIn = Assert.Single(unit.Sequence("dropins"));
        using var temp = new TempDirectory();
        var binary = FakeBinary(temp);
        var path = temp.Write("dtask-executor.service", WithExecutable(unit.Scalar("contents")!, binary));
        temp.Write(Path.Combine("dtask-executor.service.d", dropIn.Scalar("name")!), WithExecutable(dropIn.Scalar("contents")!, binary));

        var run = await ExternalTool.RunAsync(verify, ["verify", path], workingDirectory: temp.Path);

        Assert.True(run.ExitCode == 0 && run.Output.Length == 0 && run.Error.Length == 0, run.Describe());
    }

    [Fact]
    public async Task Systemd_analyze_verify_complains_about_a_broken_unit()
    {
        // The check above is only worth something if verify reports mistakes on its output.
        var verify = ExternalTool.RequireOrSkip("systemd-analyze", "`systemd-analyze verify`");
        using var temp = new TempDirectory();
        var text = WithExecutable(RepositoryFiles.ReadText("deploy", "systemd", "dtask-executor.service"), FakeBinary(temp))
            .Replace("ProtectSystem=strict", "ProtectSystem=stricter", StringComparison.Ordinal);
        var path = temp.Write("dtask-executor.service", text);

        var run = await ExternalTool.RunAsync(verify, ["verify", path], workingDirectory: temp.Path);

        Assert.Contains("stricter", run.Output + run.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void The_executor_unit_is_a_notify_service_that_stops_its_own_children()
    {
        var unit = UnitFile.Parse(RepositoryFiles.ReadText("deploy", "systemd", "dtask-executor.service"));

        Assert.Equal("notify", unit.Single("Service", "Type"));
        Assert.Equal("always", unit.Single("Service", "Restart"));
        Assert.NotNull(unit.Single("Service", "RestartSec"));
        Assert.Equal("mixed", unit.Single("Service", "KillMode"));
        Assert.Equal("continue", unit.Single("Service", "OOMPolicy"));
        Assert.StartsWith("/usr/local/bin/dtask executor", unit.Single("Service", "ExecStart"), StringComparison.Ordinal);
        Assert.Equal("dtask", unit.Single("Service", "User"));
        Assert.Equal("dtask", unit.Single("Service", "StateDirectory"));
        Assert.Equal("-/etc/dtask/executor.env", unit.Single("Service", "EnvironmentFile"));
        Assert.Equal("multi-user.target", unit.Single("Install", "WantedBy"));
    }

    [Fact]
    public void The_executor_unit_is_sandboxed()
    {
        var unit = UnitFile.Parse(RepositoryFiles.ReadText("deploy", "systemd", "dtask-executor.service"));

        foreach (var key in new[]
                 {
                     "NoNewPrivileges", "ProtectHome", "PrivateTmp", "PrivateDevices", "ProtectKernelTunables",
                     "ProtectKernelModules", "ProtectKernelLogs", "ProtectControlGroups", "RestrictSUIDSGID",
                     "LockPersonality", "RestrictRealtime", "RestrictNamespaces",
                 })
        {
            Assert.True(unit.Single("Service", key) == "yes", $"{key}=yes is missing");
        }

        Assert.Equal("strict", unit.Single("Service", "ProtectSystem"));
        Assert.Equal("native", unit.Single("Service", "SystemCallArchitectures"));
        Assert.Equal("", unit.Single("Service", "CapabilityBoundingSet"));
        // The .NET JIT writes executable memory.
        Assert.Null(unit.Single("Service", "MemoryDenyWriteExecute"));
        // Tasks need the network.
        Assert.Null(unit.Single("Service", "PrivateNetwork"));
        Assert.Contains("AF_INET", unit.Single("Service", "RestrictAddressFamilies"), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("dtask-executor.service", "consul-token")]
    [InlineData("dtask-executor.service", "slack-webhook")]
    [InlineData("dtask-executor.service", "datadog-api-key")]
    [InlineData("dtask-operator.service", "consul-token")]
    public void Secrets_arrive_as_systemd_credentials_from_root_only_files(string unitName, string credential)
    {
        var unit = UnitFile.Parse(RepositoryFiles.ReadText("deploy", "systemd", unitName));

        Assert.Contains(unit.All("Service", "LoadCredential"), v => v.StartsWith(credential + ":/etc/dtask/", StringComparison.Ordinal));
        Assert.Contains("CONSUL_HTTP_TOKEN_FILE=%d/consul-token", unit.All("Service", "Environment"));
    }

    [Fact]
    public void The_example_environment_file_names_the_executor_credentials_directory()
    {
        var text = RepositoryFiles.ReadText("deploy", "systemd", "executor.env.example");

        // %d is not expanded in environment files: the credentials directory is /run/credentials/<unit name>.
        Assert.Contains("SLACK_WEBHOOK_FILE=/run/credentials/dtask-executor.service/slack-webhook", text, StringComparison.Ordinal);
        Assert.Contains("DD_API_KEY_FILE=/run/credentials/dtask-executor.service/datadog-api-key", text, StringComparison.Ordinal);
    }

    [Fact]
    public void The_example_environment_file_holds_no_secret()
    {
        var lines = RepositoryFiles.ReadText("deploy", "systemd", "executor.env.example")
            .Split('\n')
            .Select(l => l.Trim())
            .Where(l => l.Length > 0 && !l.StartsWith('#'))
            .ToList();
        var keys = lines.Select(l => l[..l.IndexOf('=', StringComparison.Ordinal)]).ToList();

        Assert.Contains("CONSUL_HTTP_ADDR", keys);
        Assert.Contains("CONSUL_CACERT", keys);
        foreach (var secret in new[] { "CONSUL_HTTP_TOKEN", "SLACK_WEBHOOK", "DD_API_KEY", "DATADOG_API_KEY", "CONSUL_CLIENT_KEY" })
        {
            Assert.DoesNotContain(secret, keys);
        }
    }

    [Theory]
    [MemberData(nameof(Units))]
    public void A_unit_holds_nothing_a_Terraform_template_would_expand(string unit)
    {
        // deploy/butane/*.bu embed the executor unit and are rendered with templatefile().
        var text = RepositoryFiles.ReadText("deploy", "systemd", unit);

        Assert.DoesNotContain("${", text, StringComparison.Ordinal);
        Assert.DoesNotContain("%{", text, StringComparison.Ordinal);
    }

    /// <summary>An executable file standing in for the dtask binary (verify checks that ExecStart exists).</summary>
    private static string FakeBinary(TempDirectory temp)
    {
        var path = temp.Write(Path.Combine("bin", "dtask"), "#!/bin/sh\nexit 0\n");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        return path;
    }

    private static string WithExecutable(string unitText, string binary) => unitText
        .Replace("/usr/local/bin/dtask", binary, StringComparison.Ordinal)
        .Replace("/opt/bin/dtask", binary, StringComparison.Ordinal);
}
