using System.Text.RegularExpressions;
using Dtask.Deploy.Tests.Support;

namespace Dtask.Deploy.Tests;

/// <summary>
/// terraform/. Providers cannot be downloaded here, so `terraform init`/`validate` are not run: the files are
/// checked with `terraform fmt` (which parses them) and read for the rules the design sets.
/// </summary>
public sealed partial class TerraformTests
{
    private static readonly string Root = RepositoryRoot.Combine("terraform");

    [Fact]
    public async Task Terraform_fmt_check_passes()
    {
        var terraform = ExternalTool.RequireOrSkip("terraform", "`terraform fmt -check -recursive terraform/`");

        var run = await ExternalTool.RunAsync(terraform, ["fmt", "-check", "-recursive", Root]);

        Assert.True(run.ExitCode == 0 && run.Output.Length == 0, run.Describe());
    }

    [Fact]
    public void No_ingress_rule_is_open_to_the_world()
    {
        var open = Blocks("resource \"aws_vpc_security_group_ingress_rule\"")
            .Concat(Blocks("resource \"aws_security_group_rule\""))
            .Concat(Blocks("ingress {"))
            .Where(b => b.Text.Contains("0.0.0.0/0", StringComparison.Ordinal) || b.Text.Contains("::/0", StringComparison.Ordinal))
            .Select(b => b.File)
            .ToList();

        Assert.True(open.Count == 0, "ingress from anywhere in: " + string.Join(", ", open));
    }

    [Fact]
    public void The_Consul_API_is_open_to_the_VPC_only()
    {
        var api = Assert.Single(
            Blocks("resource \"aws_vpc_security_group_ingress_rule\""),
            b => b.Text.Contains("8501", StringComparison.Ordinal));

        Assert.Contains("cidr_ipv4         = var.vpc_cidr", api.Text, StringComparison.Ordinal);
        Assert.DoesNotContain(Blocks("resource \"aws_vpc_security_group_ingress_rule\""), b => b.Text.Contains("8500", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("nodes/variables.tf", "slack_webhook")]
    [InlineData("nodes/variables.tf", "datadog_api_key")]
    [InlineData("modules/nodes/variables.tf", "slack_webhook")]
    [InlineData("modules/nodes/variables.tf", "datadog_api_key")]
    public void Secret_variables_are_sensitive(string file, string variable)
    {
        var block = Assert.Single(Blocks($"variable \"{variable}\""), b => b.File == file);

        Assert.Matches(@"sensitive\s*=\s*true", block.Text);
    }

    [Fact]
    public void The_region_defaults_to_us_east_2()
    {
        var region = Assert.Single(Blocks("output \"region\""), b => b.File == "modules/global_variables/outputs.tf");

        Assert.Contains("\"us-east-2\"", region.Text, StringComparison.Ordinal);
    }

    [Fact]
    public void Each_node_gets_its_own_policy_rendered_from_deploy_acl_executor_hcl_and_runs_with_that_node_name()
    {
        var policy = Assert.Single(Blocks("resource \"consul_acl_policy\" \"executor\""));
        var token = Assert.Single(Blocks("resource \"consul_acl_token\" \"executor\""));
        var ignition = Assert.Single(Blocks("data \"ct_config\" \"node\""));

        var sessionNode = Assert.Single(Blocks("resource \"consul_node\" \"executor\""));

        Assert.Contains("count       = var.node_count", policy.Text, StringComparison.Ordinal);
        Assert.Contains("templatefile(\"${path.module}/../../../deploy/acl/executor.hcl\", {", policy.Text, StringComparison.Ordinal);
        Assert.Matches(@"\bnode\s+= local\.node_names\[count\.index\]", policy.Text);
        Assert.Matches(@"\bconsul_node\s+= local\.node_names\[count\.index\]", policy.Text);
        Assert.Contains("\"\\\"dtask/\", \"\\\"${var.kv_prefix}\"", policy.Text, StringComparison.Ordinal);
        Assert.Contains("policies    = [consul_acl_policy.executor[count.index].name]", token.Text, StringComparison.Ordinal);
        Assert.Contains("executor_args       = \"--node ${local.node_names[count.index]} --session-node ${local.node_names[count.index]} ${local.executor_args}\"", ignition.Text, StringComparison.Ordinal);

        // Each executor's sessions are on a catalog node of its own, named like the node.
        Assert.Contains("count   = var.node_count", sessionNode.Text, StringComparison.Ordinal);
        Assert.Contains("name    = local.node_names[count.index]", sessionNode.Text, StringComparison.Ordinal);
        Assert.Contains("\"${var.name}-${i}\"", File.ReadAllText(Path.Combine(Root, "modules", "nodes", "acl.tf")), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Terraform_renders_each_node_s_policy_with_its_registration_key_and_its_own_session_node_only()
    {
        var terraform = ExternalTool.RequireOrSkip("terraform", "the rendering of deploy/acl/executor.hcl by `terraform console`");
        var policy = Assert.Single(Blocks("resource \"consul_acl_policy\" \"executor\"")).Text;
        var start = policy.IndexOf("replace(", StringComparison.Ordinal);
        var expression = policy[start..(policy.LastIndexOf(')') + 1)]
            .Replace("${path.module}", Path.Combine(Root, "modules", "nodes"), StringComparison.Ordinal)
            .Replace("local.node_names[count.index]", "\"dtask-node-1\"", StringComparison.Ordinal)
            .Replace("var.kv_prefix", "\"jobs/\"", StringComparison.Ordinal);

        var rendered = await ConsoleAsync(terraform, expression);

        Assert.Contains("key \"jobs/nodes/dtask-node-1\" {\n  policy = \"write\"", rendered, StringComparison.Ordinal);
        Assert.Contains("session \"dtask-node-1\" {\n  policy = \"write\"", rendered, StringComparison.Ordinal);
        Assert.DoesNotContain("session_prefix", rendered, StringComparison.Ordinal);
        Assert.DoesNotContain("\"dtask/", rendered, StringComparison.Ordinal);
        Assert.DoesNotContain("key_prefix \"jobs/tasks/\" {\n  policy = \"write\"", rendered, StringComparison.Ordinal);
    }

    [Fact]
    public async Task With_labels_from_consul_Terraform_writes_each_node_s_labels_key_and_starts_the_executors_with_labels_from_consul()
    {
        var terraform = ExternalTool.RequireOrSkip("terraform", "the node labels Terraform writes, evaluated by `terraform console`");
        var keys = Assert.Single(Blocks("resource \"consul_keys\" \"node_labels\""));
        var acl = File.ReadAllText(Path.Combine(Root, "modules", "nodes", "acl.tf"));
        var main = File.ReadAllText(Path.Combine(Root, "modules", "nodes", "main.tf"));
        var start = acl.IndexOf("node_label_values = ", StringComparison.Ordinal) + "node_label_values = ".Length;
        var end = acl.IndexOf("])]", start, StringComparison.Ordinal) + 3;
        var values = acl[start..end]
            .Replace("local.node_names", "[\"dtask-node-0\", \"dtask-node-1\"]", StringComparison.Ordinal)
            .Replace("var.node_labels_by_node", "{ \"dtask-node-1\" = { role = \"storage\", zone = \"b\" } }", StringComparison.Ordinal)
            .Replace("var.node_labels", "{ role = \"worker\" }", StringComparison.Ordinal);
        var argsLine = main.Split('\n').Single(l => l.TrimStart().StartsWith("labels_args", StringComparison.Ordinal));
        var args = argsLine[(argsLine.IndexOf('=', StringComparison.Ordinal) + 1)..].Trim();
        string Args(bool fromConsul) => args
            .Replace("var.labels_from_consul", fromConsul ? "true" : "false", StringComparison.Ordinal)
            .Replace("local.labels_arg", "\"role=worker\"", StringComparison.Ordinal);

        var labels = await ConsoleAsync(terraform, values);
        var fromConsul = await ConsoleAsync(terraform, Args(true));
        var declared = await ConsoleAsync(terraform, Args(false));

        Assert.Contains("count = var.labels_from_consul ? var.node_count : 0", keys.Text, StringComparison.Ordinal);
        Assert.Contains("path   = \"${var.kv_prefix}node-labels/${local.node_names[count.index]}\"", keys.Text, StringComparison.Ordinal);
        Assert.Contains("value  = local.node_label_values[count.index]", keys.Text, StringComparison.Ordinal);
        Assert.Equal("[\n  \"role=worker\",\n  \"role=storage,zone=b\",\n]", labels.Trim());
        Assert.Equal("\" --labels-from-consul\"", fromConsul.Trim());
        Assert.Equal("\" --labels role=worker\"", declared.Trim());
        Assert.Matches(@"variable ""labels_from_consul"" \{[^}]*default\s+= true", File.ReadAllText(Path.Combine(Root, "modules", "nodes", "variables.tf")));
    }

    /// <summary>
    /// What <c>terraform console</c> prints for <paramref name="expression"/> (which may span lines), evaluated as a
    /// local value of an otherwise empty configuration: no providers, no init.
    /// </summary>
    private static async Task<string> ConsoleAsync(string terraform, string expression)
    {
        var empty = Directory.CreateTempSubdirectory("dtask-tf-console-");
        try
        {
            await File.WriteAllTextAsync(Path.Combine(empty.FullName, "main.tf"), "locals {\n  value = " + expression + "\n}\n", TestContext.Current.CancellationToken);
            var run = await ExternalTool.RunAsync(terraform, ["console"], empty.FullName, "local.value\n");
            Assert.True(run.ExitCode == 0, run.Describe() + "\n--- expression ---\n" + expression);
            return run.Output;
        }
        finally
        {
            empty.Delete(recursive: true);
        }
    }

    [Theory]
    [InlineData("executor.hcl")]
    [InlineData("operator.hcl")]
    [InlineData("tenant.hcl")]
    public void Docs_operations_md_shows_the_rules_of_the_policy_files_the_tests_run(string file)
    {
        static string Rules(string text) => string.Join('\n', text.Split('\n').Where(l => l.Trim().Length > 0 && !l.TrimStart().StartsWith('#')));
        var documented = RepositoryFiles.ReadText("docs", "operations.md");
        var policy = File.ReadAllText(RepositoryRoot.Combine("deploy", "acl", file));

        Assert.Contains("```hcl\n" + Rules(policy) + "\n```", documented, StringComparison.Ordinal);
        Assert.DoesNotContain("key_prefix \"dtask/\" {\n  policy = \"write\"", Rules(policy), StringComparison.Ordinal);
    }

    /// <summary>Every block (by brace matching) whose header starts with <paramref name="header"/>.</summary>
    private static IEnumerable<(string File, string Text)> Blocks(string header)
    {
        foreach (var path in Directory.EnumerateFiles(Root, "*.tf", SearchOption.AllDirectories))
        {
            var text = File.ReadAllText(path);
            for (var start = text.IndexOf(header, StringComparison.Ordinal); start >= 0; start = text.IndexOf(header, start + 1, StringComparison.Ordinal))
            {
                var open = text.IndexOf('{', start);
                var depth = 0;
                var end = open;
                for (; end < text.Length; end++)
                {
                    depth += text[end] switch { '{' => 1, '}' => -1, _ => 0 };
                    if (depth == 0)
                    {
                        break;
                    }
                }

                yield return (Path.GetRelativePath(Root, path).Replace('\\', '/'), text[start..(end + 1)]);
            }
        }
    }

    private static string Dedent(string text)
    {
        var lines = text.Split('\n');
        var indent = lines.Where(l => l.Trim().Length > 0).Min(l => l.Length - l.TrimStart().Length);
        return string.Join('\n', lines.Select(l => l.Length >= indent ? l[indent..] : l.Trim()));
    }

    [GeneratedRegex(@"<<-HCL\n(?<body>.*?\n)\s*HCL", RegexOptions.Singleline)]
    private static partial Regex HeredocBody();
}
