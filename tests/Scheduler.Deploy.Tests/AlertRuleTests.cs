using Dtask.Deploy.Tests.Support;

namespace Dtask.Deploy.Tests;

/// <summary>
/// deploy/prometheus/dtask-alerts.yml checked and unit-tested by a real promtool (<c>scripts/install-prometheus.sh</c>):
/// for each alert, input series that fire it and series that must not (dtask-alerts.test.yml).
/// </summary>
public sealed class AlertRuleTests
{
    private static readonly string Folder = RepositoryRoot.Combine("deploy", "prometheus");

    [Fact]
    public async Task Promtool_checks_the_rules()
    {
        var run = await Promtool("check", "rules", "dtask-alerts.yml");
        Assert.True(run.ExitCode == 0, run.Describe());
        Assert.Contains("SUCCESS: 7 rules found", run.Output + run.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Promtool_rule_unit_tests_pass()
    {
        var run = await Promtool("test", "rules", "dtask-alerts.test.yml");
        Assert.True(run.ExitCode == 0, run.Describe());
        Assert.Contains("SUCCESS", run.Output + run.Error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("> 0.05", "> 0.5", "DtaskConsulErrors")]
    [InlineData("> 3 * max by", "> 30 * max by", "DtaskTaskNotSucceeded")]
    [InlineData("max(dtask_operator_leader) < 1", "max(dtask_operator_leader) < 0", "DtaskOperatorNoLeader")]
    [InlineData("== 0\n          and on (namespace, task) max by (namespace, task) (dtask_task_suspended) == 0\n        for: 5m\n        labels:\n          severity: critical",
        "< 0\n          and on (namespace, task) max by (namespace, task) (dtask_task_suspended) == 0\n        for: 5m\n        labels:\n          severity: critical",
        "DtaskTaskNoEligibleExecutor")]
    public async Task The_unit_tests_catch_a_broken_rule(string from, string to, string alert)
    {
        using var copy = new TempDirectory();
        var rules = await File.ReadAllTextAsync(Path.Combine(Folder, "dtask-alerts.yml"), TestContext.Current.CancellationToken);
        Assert.Contains(from, rules, StringComparison.Ordinal);
        copy.Write("dtask-alerts.yml", rules.Replace(from, to, StringComparison.Ordinal));
        copy.Write("dtask-alerts.test.yml", await File.ReadAllTextAsync(Path.Combine(Folder, "dtask-alerts.test.yml"), TestContext.Current.CancellationToken));

        var run = await ExternalTool.RunAsync(ToolBinary.Locate("promtool", "install-prometheus.sh"), ["test", "rules", "dtask-alerts.test.yml"], copy.Path);
        Assert.NotEqual(0, run.ExitCode);
        Assert.Contains("alertname: " + alert, run.Output + run.Error, StringComparison.Ordinal);
    }

    private static Task<ToolRun> Promtool(params string[] arguments) =>
        ExternalTool.RunAsync(ToolBinary.Locate("promtool", "install-prometheus.sh"), arguments, Folder);
}
