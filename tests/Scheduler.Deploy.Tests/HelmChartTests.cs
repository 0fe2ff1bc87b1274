using System.Text.RegularExpressions;
using Dtask.Deploy.Tests.Support;
using YamlDotNet.RepresentationModel;

namespace Dtask.Deploy.Tests;

/// <summary>
/// The Helm chart in charts/dtask, checked as text: the CRD, the chart's YAML files, every .Values reference, block
/// balance, RBAC rules. <see cref="HelmTemplateTests"/> renders it with a real helm.
/// </summary>
public sealed partial class HelmChartTests
{
    private static readonly string Chart = RepositoryRoot.Combine("charts", "dtask");

    [Fact]
    public void The_chart_CRD_is_byte_identical_to_the_one_in_crds()
    {
        Assert.Equal(
            File.ReadAllBytes(RepositoryRoot.Combine("crds", "scheduledtasks.dtask.dev.yaml")),
            File.ReadAllBytes(Path.Combine(Chart, "crds", "scheduledtasks.dtask.dev.yaml")));
    }

    [Fact]
    public void Chart_yaml_is_a_Helm_3_application_chart()
    {
        var chart = Yaml.LoadSingle(File.ReadAllText(Path.Combine(Chart, "Chart.yaml")));

        Assert.Equal("v2", chart.Scalar("apiVersion"));
        Assert.Equal("dtask", chart.Scalar("name"));
        Assert.Equal("application", chart.Scalar("type"));
        Assert.Matches(@"^\d+\.\d+\.\d+", chart.Scalar("version"));
        Assert.NotNull(chart.Scalar("appVersion"));
    }

    public static TheoryData<string> Templates =>
        new(Directory.GetFiles(Path.Combine(RepositoryRoot.Path, "charts", "dtask", "templates")).Select(Path.GetFileName).OfType<string>());

    [Theory]
    [MemberData(nameof(Templates))]
    public void Every_Values_reference_exists_in_values_yaml(string template)
    {
        var values = Yaml.LoadSingle(File.ReadAllText(Path.Combine(Chart, "values.yaml")));
        var text = File.ReadAllText(Path.Combine(Chart, "templates", template));

        var missing = ValuesReference().Matches(text)
            .Select(m => m.Groups["path"].Value)
            .Where(path => values.At(path) is null)
            .Distinct()
            .ToList();

        Assert.True(missing.Count == 0, "not in values.yaml: " + string.Join(", ", missing));
    }

    [Theory]
    [MemberData(nameof(Templates))]
    public void Template_actions_and_blocks_are_balanced(string template)
    {
        var text = File.ReadAllText(Path.Combine(Chart, "templates", template));

        Assert.Equal(Count(text, "{{"), Count(text, "}}"));
        Assert.Equal(BlockOpen().Count(text), BlockEnd().Count(text));
    }

    [Fact]
    public void The_operator_probes_the_health_endpoints_and_runs_as_non_root_on_a_read_only_root()
    {
        var deployment = File.ReadAllText(Path.Combine(Chart, "templates", "operator-deployment.yaml"));
        var helpers = File.ReadAllText(Path.Combine(Chart, "templates", "_helpers.tpl"));
        var values = Yaml.LoadSingle(File.ReadAllText(Path.Combine(Chart, "values.yaml")));

        Assert.Equal("2", values.Scalar("operator.replicaCount"));
        Assert.Contains("path: /healthz", deployment, StringComparison.Ordinal);
        Assert.Contains("path: /readyz", deployment, StringComparison.Ordinal);
        Assert.Contains("- --health-port", deployment, StringComparison.Ordinal);
        Assert.Contains("runAsNonRoot: true", helpers, StringComparison.Ordinal);
        Assert.Contains("readOnlyRootFilesystem: true", helpers, StringComparison.Ordinal);
        Assert.Contains("allowPrivilegeEscalation: false", helpers, StringComparison.Ordinal);
    }

    [Fact]
    public void The_executor_reaches_the_node_agent_and_names_itself_after_the_node()
    {
        var daemonSet = File.ReadAllText(Path.Combine(Chart, "templates", "executor-daemonset.yaml"));
        var helpers = File.ReadAllText(Path.Combine(Chart, "templates", "_helpers.tpl"));

        Assert.Contains("fieldPath: spec.nodeName", daemonSet, StringComparison.Ordinal);
        Assert.Contains("fieldPath: status.hostIP", daemonSet, StringComparison.Ordinal);
        Assert.Contains("- $(NODE_NAME)", daemonSet, StringComparison.Ordinal);
        Assert.Contains("\"$(HOST_IP):%v\"", helpers, StringComparison.Ordinal);
    }

    [Fact]
    public void The_RBAC_rules_are_exactly_what_the_operator_calls()
    {
        var text = File.ReadAllText(Path.Combine(Chart, "templates", "rbac.yaml"));
        var documents = text.Split("\n---\n");
        var granted = documents.Select(RulesOf).ToList();

        // Document 0 is the ClusterRole (or Role with operator.watchNamespace), 2 the leader-election Role. The get on
        // secrets is there only with operator.resolveSecrets (HelmTemplateTests renders both ways).
        Assert.Equal([.. OperatorRbac.ClusterWide, .. OperatorRbac.ResolveSecrets], granted[0]);
        Assert.Contains("{{- if .Values.operator.resolveSecrets }}\n  # operator.resolveSecrets: the Secrets ScheduledTasks name in env[].valueFrom.secretKeyRef.\n  - apiGroups: [\"\"]\n    resources: [\"secrets\"]",
            documents[0], StringComparison.Ordinal);
        Assert.Empty(granted[1]);
        Assert.Equal(OperatorRbac.LeaderElection, granted[2]);
        Assert.Empty(granted[3]);
        Assert.Equal(4, documents.Length);
    }

    /// <summary>The (group, resource, verb) triples of a template's flow-style rules.</summary>
    private static HashSet<(string, string, string)> RulesOf(string document)
    {
        var rules = new HashSet<(string, string, string)>();
        foreach (Match rule in Rule().Matches(document))
        {
            var parsed = Yaml.LoadSingle(rule.Value.Replace("  - apiGroups", "apiGroups", StringComparison.Ordinal).Replace("\n    ", "\n", StringComparison.Ordinal));
            foreach (var group in parsed.Strings("apiGroups"))
            {
                foreach (var resource in parsed.Strings("resources"))
                {
                    foreach (var verb in parsed.Strings("verbs"))
                    {
                        rules.Add((group, resource, verb));
                    }
                }
            }
        }

        return rules;
    }

    private static int Count(string text, string what)
    {
        var count = 0;
        for (var i = text.IndexOf(what, StringComparison.Ordinal); i >= 0; i = text.IndexOf(what, i + what.Length, StringComparison.Ordinal))
        {
            count++;
        }

        return count;
    }

    [GeneratedRegex(@"\$?\.Values\.(?<path>[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*)")]
    private static partial Regex ValuesReference();

    [GeneratedRegex(@"\{\{-?\s*(if|with|range|define)\b")]
    private static partial Regex BlockOpen();

    [GeneratedRegex(@"\{\{-?\s*end\b")]
    private static partial Regex BlockEnd();

    [GeneratedRegex(@"  - apiGroups: \[[^\]]*\]\n    resources: \[[^\]]*\]\n    verbs: \[[^\]]*\]")]
    private static partial Regex Rule();
}
