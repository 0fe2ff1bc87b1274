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

        Assert.Contains("count       = var.node_count", policy.Text, StringComparison.Ordinal);
        Assert.Contains("templatefile(\"${path.module}/../../../deploy/acl/executor.hcl\", { node = local.node_names[count.index] })", policy.Text, StringComparison.Ordinal);
        Assert.Contains("\"\\\"dtask/\", \"\\\"${var.kv_prefix}\"", policy.Text, StringComparison.Ordinal);
        Assert.Contains("policies    = [consul_acl_policy.executor[count.index].name]", token.Text, StringComparison.Ordinal);
        Assert.Contains("executor_args       = \"--node ${local.node_names[count.index]} ${local.executor_args}\"", ignition.Text, StringComparison.Ordinal);
        Assert.Contains("\"${var.name}-${i}\"", File.ReadAllText(Path.Combine(Root, "modules", "nodes", "acl.tf")), StringComparison.Ordinal);
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
