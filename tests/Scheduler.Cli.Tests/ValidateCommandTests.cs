using System.Diagnostics;
using System.Globalization;

namespace Dtask.Cli.Tests;

public sealed class ValidateCommandTests
{
    private const string Valid = """
        apiVersion: dtask.dev/v1alpha1
        kind: ScheduledTask
        metadata:
          name: backup
        spec:
          schedule: "30 2 * * *"
          command: ["echo", "hi"]
        """;

    [Fact]
    public void All_examples_are_valid_and_the_summary_counts_them()
    {
        var run = CliRun.Of("validate", "-f", RepositoryRoot.Combine("examples"));

        Assert.Equal(0, run.ExitCode);
        Assert.Equal("", run.Error);
        Assert.Matches(@"^\d+ documents, 0 invalid$", Assert.Single(run.OutputLines));
    }

    [Fact]
    public void An_invalid_document_is_printed_with_file_index_name_path_and_reason_and_exit_code_is_1()
    {
        using var dir = new TempDirectory();
        var file = dir.Write("bad.yaml", Valid + "\n---\n" + Valid.Replace("name: backup", "name: backup2", StringComparison.Ordinal)
            .Replace("schedule: \"30 2 * * *\"", "schedule: \"30 2 * * *\"\n  every: 1h", StringComparison.Ordinal)
            .Replace("command: [\"echo\", \"hi\"]", "shell: \"\"", StringComparison.Ordinal));

        var run = CliRun.Of("validate", "-f", file);

        Assert.Equal(1, run.ExitCode);
        Assert.Equal(
            [
                $"{file}[1] default/backup2: spec.every: cannot be set together with spec.schedule; set exactly one of them",
                $"{file}[1] default/backup2: spec.shell: must not be empty",
                "2 documents, 1 invalid",
            ],
            run.OutputLines);
    }

    [Fact]
    public void Env_valueFrom_file_is_accepted_and_a_bad_one_is_named_by_its_field()
    {
        using var dir = new TempDirectory();
        static string With(string env) => Valid + "\n  env:\n" + env;
        var good = dir.Write("good.yaml", With("    - name: TOKEN\n      valueFrom:\n        file: /etc/dtask/secrets/token"));
        var bad = dir.Write("bad.yaml", With(
            "    - name: BOTH\n      value: x\n      valueFrom:\n        file: /a\n" +
            "    - name: RELATIVE\n      valueFrom:\n        file: secrets/token"));
        var shape = dir.Write("shape.yaml", With("    - name: OTHER\n      valueFrom:\n        secretKeyRef: x"));
        var reference = dir.Write("reference.yaml", With(
            "    - name: REF\n      valueFrom:\n        secretKeyRef: {name: db, key: password}\n" +
            "    - name: BOTH\n      valueFrom:\n        file: /a\n        secretKeyRef: {name: Bad_Name, key: a/b}"));

        var ok = CliRun.Of("validate", "-f", good);
        var run = CliRun.Of("validate", "-f", bad);
        var unknown = CliRun.Of("validate", "-f", shape);
        var unresolved = CliRun.Of("validate", "-f", reference);

        Assert.Equal(0, ok.ExitCode);
        Assert.Equal(1, run.ExitCode);
        Assert.Equal(
            [
                $"{bad}[0] default/backup: spec.env[0].valueFrom: cannot be given with value: the value comes from one or the other",
                $"{bad}[0] default/backup: spec.env[1].valueFrom.file: 'secrets/token' is not an absolute path",
                "1 document, 1 invalid",
            ],
            run.OutputLines);
        Assert.Equal(1, unknown.ExitCode);
        Assert.Equal([$"{shape}[0] default/backup: spec.env[0].valueFrom.secretKeyRef: expected a mapping of fields, found the string 'x'", "1 document, 1 invalid"],
            unknown.OutputLines);

        // A Kubernetes Secret reference: only the operator's Kubernetes source resolves one (--resolve-secrets).
        const string NotResolved = "is not resolved: only `dtask operator --source kubernetes --resolve-secrets` reads Kubernetes Secrets; use valueFrom.file elsewhere";
        Assert.Equal(1, unresolved.ExitCode);
        Assert.Equal(
            [
                $"{reference}[0] default/backup: spec.env[0].valueFrom.secretKeyRef: {NotResolved}",
                $"{reference}[0] default/backup: spec.env[1].valueFrom: exactly one of file or secretKeyRef must be set",
                $"{reference}[0] default/backup: spec.env[1].valueFrom.secretKeyRef.name: 'Bad_Name' is not a Secret name (a DNS-1123 subdomain of at most 253 characters)",
                $"{reference}[0] default/backup: spec.env[1].valueFrom.secretKeyRef.key: 'a/b' is not a Secret key (letters, digits, '-', '_' and '.')",
                $"{reference}[0] default/backup: spec.env[1].valueFrom.secretKeyRef: {NotResolved}",
                "1 document, 1 invalid",
            ],
            unresolved.OutputLines);
        Assert.DoesNotContain("   at ", run.Output + run.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void Repeated_file_options_are_all_read()
    {
        using var dir = new TempDirectory();
        var a = dir.Write("a.yaml", Valid);
        var b = dir.Write("b.yml", Valid.Replace("backup", "other", StringComparison.Ordinal));

        var run = CliRun.Of("validate", "-f", a, "-f", b);

        Assert.Equal(0, run.ExitCode);
        Assert.Equal(["2 documents, 0 invalid"], run.OutputLines);
    }

    [Fact]
    public void The_same_task_in_two_files_is_reported_on_the_second()
    {
        using var dir = new TempDirectory();
        var a = dir.Write("a.yaml", Valid);
        var b = dir.Write("b.yaml", Valid);

        var run = CliRun.Of("validate", "-f", dir.Path);

        Assert.Equal(1, run.ExitCode);
        Assert.Equal($"{b}[0] default/backup: metadata.name: default/backup is already defined in {a}[0]", run.OutputLines[0]);
    }

    [Fact]
    public void Invalid_yaml_names_the_line()
    {
        using var dir = new TempDirectory();
        var file = dir.Write("broken.yaml", "apiVersion: dtask.dev/v1alpha1\nkind: [ScheduledTask\n");

        var run = CliRun.Of("validate", "-f", file);

        Assert.Equal(1, run.ExitCode);
        Assert.StartsWith($"{file}[0] ?: invalid YAML: line ", run.OutputLines[0], StringComparison.Ordinal);
    }

    [Fact]
    public void A_missing_path_is_a_usage_error_with_a_clear_message()
    {
        var run = CliRun.Of("validate", "-f", "/nonexistent/tasks.yaml");

        Assert.Equal(2, run.ExitCode);
        Assert.Equal("dtask validate: /nonexistent/tasks.yaml: no such file or directory\n", run.Error);
        Assert.Equal("", run.Output);
    }

    [Fact]
    public void Without_a_file_option_it_is_a_usage_error()
    {
        var run = CliRun.Of("validate");

        Assert.Equal(2, run.ExitCode);
        Assert.Contains("--file", run.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", run.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void An_unknown_command_or_option_is_a_usage_error()
    {
        var unknownCommand = CliRun.Of("frobnicate");
        var unknownOption = CliRun.Of("validate", "-f", ".", "--strict");

        Assert.Equal(2, unknownCommand.ExitCode);
        Assert.Contains("frobnicate", unknownCommand.Error, StringComparison.Ordinal);
        Assert.Equal(2, unknownOption.ExitCode);
        Assert.Contains("--strict", unknownOption.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void Help_goes_to_standard_output_with_exit_code_0()
    {
        var run = CliRun.Of("validate", "--help");

        Assert.Equal(0, run.ExitCode);
        Assert.Contains("--file", run.Output, StringComparison.Ordinal);
    }

    [Fact]
    public void A_directory_of_a_thousand_manifests_validates()
    {
        using var dir = new TempDirectory();
        for (var i = 0; i < 1000; i++)
        {
            var name = "task-" + i.ToString("D4", CultureInfo.InvariantCulture);
            dir.Write($"group-{i % 10}/{name}.yaml", Valid.Replace("name: backup", "name: " + name, StringComparison.Ordinal)
                .Replace("30 2 * * *", $"{i % 60} H * * *", StringComparison.Ordinal));
        }

        var stopwatch = Stopwatch.StartNew();
        var run = CliRun.Of("validate", "-f", dir.Path);
        stopwatch.Stop();

        Assert.Equal(0, run.ExitCode);
        Assert.Equal(["1000 documents, 0 invalid"], run.OutputLines);
        TestContext.Current.SendDiagnosticMessage($"validated 1000 manifests in {stopwatch.ElapsedMilliseconds} ms");
    }
}
