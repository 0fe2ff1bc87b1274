using Dtask.Deploy.Tests.Support;
using YamlDotNet.RepresentationModel;

namespace Dtask.Deploy.Tests;

/// <summary>
/// The chart rendered by a real helm 3 (<c>scripts/install-helm.sh</c>): <c>helm lint --strict</c> and
/// <c>helm template</c> with each documented combination of values, the rendered objects parsed and checked — kinds,
/// selectors matching the labels they select, probes and monitors pointing at ports and paths dtask serves, secrets
/// and TLS mounted where the environment says, RBAC equal to what the operator calls, the CRD and alert rules equal to
/// the repository's.
/// </summary>
public sealed class HelmTemplateTests
{
    private static readonly string Chart = RepositoryRoot.Combine("charts", "dtask");

    /// <summary>The documented value combinations, by name.</summary>
    private static readonly Dictionary<string, string[]> ValueSets = new(StringComparer.Ordinal)
    {
        ["default"] = [],
        ["executors-only"] = ["operator.enabled=false"],
        ["operator-only"] = ["executor.enabled=false"],
        ["monitoring"] = ["monitoring.serviceMonitor.enabled=true", "monitoring.prometheusRule.enabled=true", "monitoring.serviceMonitor.labels.release=kps",
            "monitoring.prometheusRule.labels.release=kps"],
        ["executor-metrics-off"] = ["executor.metrics.enabled=false", "monitoring.serviceMonitor.enabled=true"],
        ["existing-secrets"] = ["consul.operatorToken.secretName=dtask-operator-token", "consul.executorToken.secretName=dtask-executor-token",
            "executor.slack.secretName=dtask-slack"],
        ["tls"] = ["consul.address=https://consul.consul.svc:8501", "consul.tls.secretName=consul-tls", "consul.tls.certKey=client.pem",
            "consul.tls.keyKey=client-key.pem"],
        ["watch-namespace"] = ["operator.watchNamespace=jobs"],
        ["resolve-secrets"] = ["operator.resolveSecrets=true"],
        ["per-node-tokens"] = ["executor.perNodeTokens.nodes={node-1,node-2}", "executor.nodeSelector.pool=workers"],
        ["ui"] = ["operator.ui.enabled=true", "operator.ui.allowActions=true", "operator.ui.bearerTokenSecret=dtask-ui-token", "monitoring.serviceMonitor.enabled=true"],
    };

    /// <summary>The nodes of <c>executor.perNodeTokens.nodes</c> in <paramref name="sets"/>; empty when not given.</summary>
    private static string[] PerNodeTokenNodes(string[] sets) =>
        sets.FirstOrDefault(s => s.StartsWith("executor.perNodeTokens.nodes=", StringComparison.Ordinal)) is { } list
            ? list[(list.IndexOf('{', StringComparison.Ordinal) + 1)..^1].Split(',')
            : [];

    public static TheoryData<string> ValueSetNames => new(ValueSets.Keys);

    [Theory]
    [MemberData(nameof(ValueSetNames))]
    public async Task Helm_lint_strict_passes(string valueSet)
    {
        var lint = await Helm(["lint", "--strict", Chart, .. Sets(valueSet)]);
        Assert.True(lint.ExitCode == 0, lint.Describe());
        Assert.Contains("0 chart(s) failed", lint.Output, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(ValueSetNames))]
    public async Task The_rendered_objects_are_consistent(string valueSet)
    {
        var objects = await RenderAsync(valueSet);
        var sets = ValueSets[valueSet];
        bool On(string setting) => sets.Contains(setting, StringComparer.Ordinal);
        var operatorOn = !On("operator.enabled=false");
        var executorOn = !On("executor.enabled=false");
        var executorMetrics = executorOn && !On("executor.metrics.enabled=false");
        var monitors = On("monitoring.serviceMonitor.enabled=true");

        // Kinds.
        var expected = new List<string> { "ServiceAccount" };
        if (operatorOn)
        {
            expected.AddRange(["ServiceAccount", "Deployment", "Service", operatorNamespaced(sets) ? "Role" : "ClusterRole",
                operatorNamespaced(sets) ? "RoleBinding" : "ClusterRoleBinding", "Role", "RoleBinding"]);
            if (On("operator.ui.enabled=true"))
            {
                expected.Add("Service");
            }
        }

        if (!executorOn)
        {
            expected.Remove("ServiceAccount");
        }
        else
        {
            expected.AddRange(Enumerable.Repeat("DaemonSet", Math.Max(1, PerNodeTokenNodes(sets).Length)));
        }

        if (executorMetrics)
        {
            expected.Add("Service");
        }

        if (monitors)
        {
            expected.AddRange(Enumerable.Repeat("ServiceMonitor", (operatorOn ? 1 : 0) + (executorMetrics ? 1 : 0)));
        }

        if (On("monitoring.prometheusRule.enabled=true"))
        {
            expected.Add("PrometheusRule");
        }

        Assert.Equal(expected.Order(StringComparer.Ordinal), objects.Select(o => o.Scalar("kind")!).Order(StringComparer.Ordinal));

        // Workloads select their own pods; every probe and Service targets a named port of the container.
        var workloads = objects.Where(o => o.Scalar("kind") is "Deployment" or "DaemonSet").ToList();
        foreach (var workload in workloads)
        {
            var podLabels = Labels(workload.At("spec.template.metadata.labels"));
            Assert.True(IsSubset(Labels(workload.At("spec.selector.matchLabels")), podLabels), $"{Name(workload)}: selector does not match its pod labels");
            var container = Assert.Single(workload.Sequence("spec.template.spec.containers"));
            var ports = container.Sequence("ports").ToDictionary(p => p.Scalar("name")!, p => p.Scalar("containerPort")!, StringComparer.Ordinal);
            foreach (var probe in new[] { "livenessProbe", "readinessProbe" }.Select(p => container.At(p)).OfType<YamlNode>())
            {
                Assert.Contains(probe.Scalar("httpGet.path"), (string[])["/healthz", "/readyz"]);
                Assert.True(ports.ContainsKey(probe.Scalar("httpGet.port")!), $"{Name(workload)}: probe port {probe.Scalar("httpGet.port")} is not a container port");
            }

            var args = container.Strings("args").ToList();
            var env = container.Sequence("env").ToDictionary(e => e.Scalar("name")!, e => e.Scalar("value"), StringComparer.Ordinal);
            if (workload.Scalar("kind") == "DaemonSet")
            {
                var listen = args.IndexOf("--metrics-listen");
                if (executorMetrics)
                {
                    Assert.True(listen >= 0, "the executors serve no /metrics");
                    Assert.Equal($"0.0.0.0:{ports["metrics"]}", args[listen + 1]);
                }
                else
                {
                    Assert.Equal(-1, listen);
                }

                Assert.Equal("$(NODE_NAME)", args[args.IndexOf("--node") + 1]);
                Assert.Equal("true", workload.Scalar("spec.template.spec.shareProcessNamespace")); // not pid 1: children start with one exec
            }
            else
            {
                Assert.Equal(ports["health"], args[args.IndexOf("--health-port") + 1]);
            }

            CheckSecretsAndTls(sets, workload, container, env);
        }

        foreach (var service in objects.Where(o => o.Scalar("kind") == "Service"))
        {
            var selected = workloads.Where(w => IsSubset(Labels(service.At("spec.selector")), Labels(w.At("spec.template.metadata.labels")))).ToList();
            Assert.NotEmpty(selected);
            Assert.Single(selected.Select(w => w.Scalar("kind")).Distinct()); // one component: the operator, or the executors (one DaemonSet per node with per-node tokens)
            foreach (var workload in selected)
            {
                var containerPorts = Assert.Single(workload.Sequence("spec.template.spec.containers")).Sequence("ports").Select(p => p.Scalar("name")).ToList();
                foreach (var port in service.Sequence("spec.ports"))
                {
                    Assert.Contains(port.Scalar("targetPort"), containerPorts);
                }
            }
        }

        foreach (var monitor in objects.Where(o => o.Scalar("kind") == "ServiceMonitor"))
        {
            var service = Assert.Single(objects, o => o.Scalar("kind") == "Service"
                && IsSubset(Labels(monitor.At("spec.selector.matchLabels")), Labels(o.At("metadata.labels"))));
            var endpoint = Assert.Single(monitor.Sequence("spec.endpoints"));
            Assert.Equal("/metrics", endpoint.Scalar("path"));
            Assert.Contains(endpoint.Scalar("port"), service.Sequence("spec.ports").Select(p => p.Scalar("name")));
            Assert.Equal(On("monitoring.serviceMonitor.labels.release=kps") ? "kps" : null, monitor.Scalar("metadata.labels.release"));
        }

        if (objects.SingleOrDefault(o => o.Scalar("kind") == "PrometheusRule") is { } rule)
        {
            var file = Yaml.LoadSingle(File.ReadAllText(RepositoryRoot.Combine("deploy", "prometheus", "dtask-alerts.yml")));
            Assert.Equal(Yaml.Canonical(file), Yaml.Canonical(rule.At("spec")!));
            Assert.Equal("kps", rule.Scalar("metadata.labels.release"));
        }

        if (operatorOn)
        {
            var clusterWide = Assert.Single(objects, o => o.Scalar("kind") is "ClusterRole" or "Role" && RulesOf(o).Contains(("dtask.dev", "scheduledtasks", "watch")));
            var resolveSecrets = On("operator.resolveSecrets=true");
            Assert.Equal(resolveSecrets ? [.. OperatorRbac.ClusterWide, .. OperatorRbac.ResolveSecrets] : OperatorRbac.ClusterWide, RulesOf(clusterWide));
            var operatorArgs = Assert.Single(Assert.Single(objects, o => o.Scalar("kind") == "Deployment").Sequence("spec.template.spec.containers")).Strings("args");
            Assert.Equal(resolveSecrets, operatorArgs.Contains("--resolve-secrets"));
            var ui = On("operator.ui.enabled=true");
            var operatorArgList = operatorArgs.ToList();
            Assert.Equal(ui, operatorArgList.Contains("--ui-listen"));
            if (ui)
            {
                // The page on every address of the pod, behind its own Service, the bearer token mounted where the flag says.
                Assert.Equal("0.0.0.0:8080", operatorArgList[operatorArgList.IndexOf("--ui-listen") + 1]);
                Assert.Contains("--ui-allow-actions", operatorArgList);
                Assert.Equal("/etc/dtask/ui-token/token", operatorArgList[operatorArgList.IndexOf("--ui-bearer-token-file") + 1]);
                var deployment = Assert.Single(objects, o => o.Scalar("kind") == "Deployment");
                Assert.Contains(deployment.Sequence("spec.template.spec.volumes"), v => v.Scalar("secret.secretName") == "dtask-ui-token");
                var service = Assert.Single(objects, o => o.Scalar("kind") == "Service" && o.Sequence("spec.ports").Any(p => p.Scalar("targetPort") == "ui"));
                Assert.Equal("ui", Labels(service.At("metadata.labels"))["app.kubernetes.io/component"]);
            }
            var election = Assert.Single(objects, o => o.Scalar("kind") == "Role" && RulesOf(o).Contains(("coordination.k8s.io", "leases", "get")));
            Assert.Equal(OperatorRbac.LeaderElection, RulesOf(election));
        }

        static bool operatorNamespaced(string[] sets) => sets.Any(s => s.StartsWith("operator.watchNamespace=", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_rendered_CRD_is_the_one_in_crds()
    {
        var run = await Helm(["template", "r", Chart, "--include-crds", "--namespace", "dtask"]);
        Assert.True(run.ExitCode == 0, run.Describe());
        var crd = Assert.Single(Yaml.LoadDocuments(run.Output), o => o.Scalar("kind") == "CustomResourceDefinition");
        var file = Yaml.LoadSingle(File.ReadAllText(RepositoryRoot.Combine("crds", "scheduledtasks.dtask.dev.yaml")));
        Assert.Equal(Yaml.Canonical(file), Yaml.Canonical(crd));
    }

    [Fact]
    public void The_chart_alert_rules_are_byte_identical_to_deploy_prometheus()
    {
        Assert.Equal(
            File.ReadAllBytes(RepositoryRoot.Combine("deploy", "prometheus", "dtask-alerts.yml")),
            File.ReadAllBytes(Path.Combine(Chart, "files", "dtask-alerts.yml")));
    }

    private static void CheckSecretsAndTls(string[] sets, YamlMappingNode workload, YamlNode container, Dictionary<string, string?> env)
    {
        var volumes = workload.Sequence("spec.template.spec.volumes");
        var mounts = container.Sequence("volumeMounts").ToDictionary(m => m.Scalar("mountPath")!, m => m.Scalar("name")!, StringComparer.Ordinal);
        var secretNames = volumes.SelectMany(v => v.Scalar("secret.secretName") is { } s ? [s] : v.Sequence("projected.sources").Select(p => p.Scalar("secret.name")!))
            .ToList();
        var isOperator = workload.Scalar("kind") == "Deployment";
        var token = sets.FirstOrDefault(s => s.StartsWith(isOperator ? "consul.operatorToken.secretName=" : "consul.executorToken.secretName=", StringComparison.Ordinal))
            ?.Split('=')[1];
        if (!isOperator && PerNodeTokenNodes(sets) is { Length: > 0 } nodes)
        {
            // One DaemonSet per node, selecting only its own pods, pinned to the node, with that node's token only.
            var node = Labels(workload.At("spec.template.metadata.labels"))["dtask.dev/node"];
            var nodeSelector = Labels(workload.At("spec.template.spec.nodeSelector"));
            Assert.Contains(node, nodes);
            Assert.Equal(node, Labels(workload.At("spec.selector.matchLabels"))["dtask.dev/node"]);
            Assert.Equal((node, "workers"), (nodeSelector["kubernetes.io/hostname"], nodeSelector["pool"]));
            token = "dtask-executor-token-" + node;
            Assert.DoesNotContain(secretNames, s => s.StartsWith("dtask-executor-token-", StringComparison.Ordinal) && s != token);
        }

        if (token is not null)
        {
            Assert.Contains(token, secretNames);
            var file = env["CONSUL_HTTP_TOKEN_FILE"]!;
            Assert.Contains(mounts.Keys, path => file.StartsWith(path + "/", StringComparison.Ordinal));
        }
        else
        {
            Assert.False(env.ContainsKey("CONSUL_HTTP_TOKEN_FILE"));
        }

        if (sets.Contains("consul.tls.secretName=consul-tls", StringComparer.Ordinal))
        {
            Assert.Contains("consul-tls", secretNames);
            Assert.Equal("consul-tls", mounts["/etc/dtask/tls"]);
            Assert.Equal("/etc/dtask/tls/ca.pem", env["CONSUL_CACERT"]);
            Assert.Equal("/etc/dtask/tls/client.pem", env["CONSUL_CLIENT_CERT"]);
            Assert.Equal("/etc/dtask/tls/client-key.pem", env["CONSUL_CLIENT_KEY"]);
            Assert.Equal("https://consul.consul.svc:8501", env["CONSUL_HTTP_ADDR"]);
        }
        else
        {
            Assert.False(env.ContainsKey("CONSUL_CACERT"));
            Assert.Equal("$(HOST_IP):8500", env["CONSUL_HTTP_ADDR"]);
        }
    }

    private static async Task<IReadOnlyList<YamlMappingNode>> RenderAsync(string valueSet)
    {
        var run = await Helm(["template", "r", Chart, "--namespace", "dtask", .. Sets(valueSet)]);
        Assert.True(run.ExitCode == 0, run.Describe());
        return Yaml.LoadDocuments(run.Output);
    }

    private static IEnumerable<string> Sets(string valueSet) => ValueSets[valueSet].SelectMany(s => (string[])["--set", s]);

    private static Task<ToolRun> Helm(IEnumerable<string> arguments) =>
        ExternalTool.RunAsync(ToolBinary.Locate("helm", "install-helm.sh"), arguments, environment: new Dictionary<string, string>
        {
            // A clean helm home: no repositories, plugins or cache of the machine's own.
            ["HELM_CACHE_HOME"] = Path.Combine(Path.GetTempPath(), "dtask-helm", "cache"),
            ["HELM_CONFIG_HOME"] = Path.Combine(Path.GetTempPath(), "dtask-helm", "config"),
            ["HELM_DATA_HOME"] = Path.Combine(Path.GetTempPath(), "dtask-helm", "data"),
        });

    private static Dictionary<string, string> Labels(YamlNode? node) =>
        node is YamlMappingNode mapping
            ? mapping.Children.ToDictionary(c => ((YamlScalarNode)c.Key).Value!, c => ((YamlScalarNode)c.Value).Value ?? "", StringComparer.Ordinal)
            : [];

    private static bool IsSubset(Dictionary<string, string> selector, Dictionary<string, string> labels) =>
        selector.Count > 0 && selector.All(s => labels.TryGetValue(s.Key, out var v) && v == s.Value);

    private static string Name(YamlNode node) => $"{node.Scalar("kind")} {node.Scalar("metadata.name")}";

    private static HashSet<(string, string, string)> RulesOf(YamlNode role)
    {
        var rules = new HashSet<(string, string, string)>();
        foreach (var rule in role.Sequence("rules"))
        {
            foreach (var group in rule.Strings("apiGroups"))
            {
                foreach (var resource in rule.Strings("resources"))
                {
                    foreach (var verb in rule.Strings("verbs"))
                    {
                        rules.Add((group, resource, verb));
                    }
                }
            }
        }

        return rules;
    }
}
