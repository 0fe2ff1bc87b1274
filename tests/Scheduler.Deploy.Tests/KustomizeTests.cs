using Dtask.Deploy.Tests.Support;
using YamlDotNet.RepresentationModel;

namespace Dtask.Deploy.Tests;

/// <summary>deploy/kustomize/base, rendered by `kubectl kustomize` (offline) and read back object by object.</summary>
public sealed class KustomizeTests
{
    private const string Namespace = "dtask-system";

    private static readonly HashSet<string> ClusterScoped = ["Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"];

    [Fact]
    public void The_base_CRD_file_is_byte_identical_to_the_one_in_crds()
    {
        Assert.Equal(
            File.ReadAllBytes(RepositoryRoot.Combine("crds", "scheduledtasks.dtask.dev.yaml")),
            File.ReadAllBytes(RepositoryRoot.Combine("deploy", "kustomize", "base", "scheduledtasks.dtask.dev.yaml")));
    }

    [Fact]
    public async Task Every_rendered_object_parses_and_lives_in_dtask_system()
    {
        var objects = await RenderAsync();

        Assert.Equal(
            ["ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "DaemonSet", "Deployment", "Namespace", "Role", "RoleBinding", "ServiceAccount", "ServiceAccount"],
            objects.Select(o => o.Scalar("kind")!).Order(StringComparer.Ordinal));
        foreach (var o in objects)
        {
            Assert.NotNull(o.Scalar("apiVersion"));
            Assert.NotNull(o.Scalar("metadata.name"));
            Assert.Equal(ClusterScoped.Contains(o.Scalar("kind")!) ? null : Namespace, o.Scalar("metadata.namespace"));
        }
    }

    [Fact]
    public async Task The_rendered_CRD_is_the_one_in_crds()
    {
        var crd = Assert.Single(await RenderAsync(), o => o.Scalar("kind") == "CustomResourceDefinition");
        var expected = Yaml.LoadSingle(RepositoryFiles.ReadText("crds", "scheduledtasks.dtask.dev.yaml"));

        Assert.Equal(expected.Scalar("apiVersion"), crd.Scalar("apiVersion"));
        Assert.Equal(expected.Scalar("metadata.name"), crd.Scalar("metadata.name"));
        Assert.Equal(Yaml.Canonical(expected.At("spec")!), Yaml.Canonical(crd.At("spec")!));
    }

    [Fact]
    public async Task The_RBAC_rules_are_exactly_what_the_operator_calls()
    {
        var objects = await RenderAsync();

        var clusterRole = Assert.Single(objects, o => o.Scalar("kind") == "ClusterRole");
        var role = Assert.Single(objects, o => o.Scalar("kind") == "Role");
        Assert.Equal(OperatorRbac.ClusterWide, RulesOf(clusterRole));
        Assert.Equal(OperatorRbac.LeaderElection, RulesOf(role));
        Assert.Equal(Namespace, role.Scalar("metadata.namespace"));

        // Both are bound to the operator's service account, and to nothing else.
        foreach (var (bindingKind, roleKind, roleName) in new[]
                 {
                     ("ClusterRoleBinding", "ClusterRole", clusterRole.Scalar("metadata.name")),
                     ("RoleBinding", "Role", role.Scalar("metadata.name")),
                 })
        {
            var binding = Assert.Single(objects, o => o.Scalar("kind") == bindingKind);
            Assert.Equal(roleKind, binding.Scalar("roleRef.kind"));
            Assert.Equal(roleName, binding.Scalar("roleRef.name"));
            var subject = Assert.Single(binding.Sequence("subjects"));
            Assert.Equal(("ServiceAccount", "dtask-operator", Namespace), (subject.Scalar("kind"), subject.Scalar("name"), subject.Scalar("namespace")));
        }
    }

    [Fact]
    public async Task The_operator_is_two_non_root_replicas_probed_on_healthz_and_readyz()
    {
        var deployment = Assert.Single(await RenderAsync(), o => o.Scalar("kind") == "Deployment");
        var pod = deployment.At("spec.template.spec")!;
        var container = Assert.Single(pod.Sequence("containers"));

        Assert.Equal("2", deployment.Scalar("spec.replicas"));
        Assert.Equal("dtask-operator", pod.Scalar("serviceAccountName"));
        Assert.Equal(["operator", "--source", "kubernetes", "--prefix", "dtask/", "--health-port", "8081"], container.Strings("args"));
        Assert.Equal("/healthz", container.Scalar("livenessProbe.httpGet.path"));
        Assert.Equal("/readyz", container.Scalar("readinessProbe.httpGet.path"));
        Assert.Equal("8081", Assert.Single(container.Sequence("ports")).Scalar("containerPort"));
        AssertLockedDown(pod, container);
    }

    [Fact]
    public async Task The_executor_runs_on_every_node_named_after_it_and_talks_to_its_agent()
    {
        var daemonSet = Assert.Single(await RenderAsync(), o => o.Scalar("kind") == "DaemonSet");
        var pod = daemonSet.At("spec.template.spec")!;
        var container = Assert.Single(pod.Sequence("containers"));
        var env = container.Sequence("env").ToDictionary(e => e.Scalar("name")!);

        Assert.Equal(["executor", "--node", "$(NODE_NAME)", "--prefix", "dtask/"], container.Strings("args"));
        Assert.Equal("spec.nodeName", env["NODE_NAME"].Scalar("valueFrom.fieldRef.fieldPath"));
        Assert.Equal("status.hostIP", env["HOST_IP"].Scalar("valueFrom.fieldRef.fieldPath"));
        Assert.Equal("$(HOST_IP):8500", env["CONSUL_HTTP_ADDR"].Scalar("value"));
        Assert.Equal("false", pod.Scalar("automountServiceAccountToken"));
        Assert.Equal("true", pod.Scalar("shareProcessNamespace")); // not pid 1: children start with one exec
        AssertLockedDown(pod, container);
    }

    private static void AssertLockedDown(YamlNode pod, YamlNode container)
    {
        Assert.Equal("true", pod.Scalar("securityContext.runAsNonRoot"));
        Assert.Equal("true", container.Scalar("securityContext.readOnlyRootFilesystem"));
        Assert.Equal("false", container.Scalar("securityContext.allowPrivilegeEscalation"));
        Assert.Equal(["ALL"], container.Strings("securityContext.capabilities.drop"));
    }

    private static HashSet<(string, string, string)> RulesOf(YamlNode role) =>
        role.Sequence("rules")
            .SelectMany(rule =>
                from g in rule.Strings("apiGroups")
                from r in rule.Strings("resources")
                from v in rule.Strings("verbs")
                select (g, r, v))
            .ToHashSet();

    private static async Task<IReadOnlyList<YamlMappingNode>> RenderAsync()
    {
        var kubectl = ExternalTool.RequireOrSkip("kubectl", "rendering deploy/kustomize/base");
        var run = await ExternalTool.RunAsync(kubectl, ["kustomize", RepositoryRoot.Combine("deploy", "kustomize", "base")]);
        Assert.True(run.ExitCode == 0 && run.Error.Length == 0, run.Describe());
        return Yaml.LoadDocuments(run.Output);
    }
}
