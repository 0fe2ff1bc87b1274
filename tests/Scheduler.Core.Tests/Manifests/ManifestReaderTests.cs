using Dtask.Core.Manifests;
using Dtask.Core.Tests.Support;

namespace Dtask.Core.Tests.Manifests;

public sealed class ManifestReaderTests
{
    private static string Task(string name, string extraSpec = "") => $"""
        apiVersion: dtask.dev/v1alpha1
        kind: ScheduledTask
        metadata:
          name: {name}
        spec:
          every: 1m
          command: ["true"]{extraSpec}
        """;

    private static IEnumerable<string> Lines(IEnumerable<ManifestDocument> documents) => documents.SelectMany(d => d.ErrorLines());

    [Fact]
    public void Many_documents_in_one_file_keep_their_index_and_empty_ones_are_skipped()
    {
        var yaml = "---\n# only a comment\n---\n" + Task("first") + "\n---\n---\n" + Task("second", "\n  bogus: 1");

        var documents = ManifestReader.ReadText(yaml, "tasks.yaml");

        Assert.Equal([new ManifestSource("tasks.yaml", 1), new ManifestSource("tasks.yaml", 3)], documents.Select(d => d.Source));
        Assert.True(documents[0].IsValid);
        Assert.Equal(["tasks.yaml[3] default/second: spec.bogus: unknown field"], Lines(documents));
    }

    [Theory]
    [InlineData("a misspelt spec field", "spec:\n  schedul: \"0 * * * *\"\n  command: [x]", "spec.schedul: unknown field (did you mean schedule?)")]
    [InlineData("a field at the top", "spec:\n  every: 1m\n  command: [x]\nstatuss: {}", "statuss: unknown field (did you mean status?)")]
    [InlineData("a field deep inside", "spec:\n  every: 1m\n  command: [x]\n  notify:\n    slack:\n      webhook: https://example.invalid", "spec.notify.slack.webhook: unknown field")]
    [InlineData("a field of an env entry", "spec:\n  every: 1m\n  command: [x]\n  env:\n    - name: A\n      valueForm: x", "spec.env[0].valueForm: unknown field (did you mean valueFrom?)")]
    [InlineData("a field of an env entry's source", "spec:\n  every: 1m\n  command: [x]\n  env:\n    - name: A\n      valueFrom:\n        configMapKeyRef: x", "spec.env[0].valueFrom.configMapKeyRef: unknown field")]
    [InlineData("a metadata field", "  nmae: x\nspec:\n  every: 1m\n  command: [x]", "metadata.nmae: unknown field (did you mean name?)")]
    public void Unknown_fields_are_errors_that_name_their_path(string where, string tail, string expected)
    {
        _ = where;
        var yaml = "apiVersion: dtask.dev/v1alpha1\nkind: ScheduledTask\nmetadata:\n  name: t\n" + tail;

        var document = Assert.Single(ManifestReader.ReadText(yaml, "t.yaml"));

        Assert.Contains(expected, document.Errors.Select(e => e.ToString()));
    }

    [Fact]
    public void Metadata_written_by_the_api_server_is_accepted()
    {
        var yaml = Task("exported").Replace("  name: exported", "  name: exported\n  uid: 1f\n  resourceVersion: \"42\"\n  generation: 2\n  creationTimestamp: \"2025-01-01T00:00:00Z\"\n  managedFields: [{manager: kubectl}]\n  finalizers: []", StringComparison.Ordinal);

        var document = Assert.Single(ManifestReader.ReadText(yaml, "t.yaml"));

        Assert.Empty(document.Errors);
        Assert.Equal(2, document.Task!.Metadata.Generation);
    }

    [Fact]
    public void A_document_of_another_kind_is_an_error_naming_the_kind()
    {
        var yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: b\n";

        var document = Assert.Single(ManifestReader.ReadText(yaml, "cm.yaml"));

        Assert.Equal(["cm.yaml[0] default/settings: kind: ConfigMap is not a ScheduledTask; only kind ScheduledTask (apiVersion dtask.dev/v1alpha1) is read here"], document.ErrorLines());
    }

    [Fact]
    public void A_document_that_is_not_a_mapping_is_an_error()
    {
        var document = Assert.Single(ManifestReader.ReadText("- a\n- b\n", "list.yaml"));

        Assert.Equal(["list.yaml[0] ?: expected a mapping with apiVersion, kind, metadata and spec, found a list"], document.ErrorLines());
    }

    [Fact]
    public void Broken_yaml_keeps_the_documents_before_it_and_names_the_line()
    {
        var yaml = Task("good") + "\n---\nkind: ScheduledTask\nspec: [unclosed\n";

        var documents = ManifestReader.ReadText(yaml, "broken.yaml");

        Assert.Equal(2, documents.Count);
        Assert.True(documents[0].IsValid);
        Assert.StartsWith("broken.yaml[1] ?: invalid YAML: line 1", Lines(documents).Single(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_duplicate_key_is_a_yaml_error()
    {
        var yaml = Task("dup").Replace("  every: 1m", "  every: 1m\n  every: 2m", StringComparison.Ordinal);

        var document = Assert.Single(ManifestReader.ReadText(yaml, "dup.yaml"));

        Assert.Contains("duplicate key 'spec.every'", document.Errors.Single().Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_directory_is_read_recursively_in_path_order_yaml_and_yml_only()
    {
        using var dir = new TempDirectory();
        dir.Write("b.yaml", Task("b"));
        dir.Write("a/z.yml", Task("z"));
        dir.Write("a/deeper/y.yaml", Task("y"));
        dir.Write("notes.txt", "not a manifest");
        dir.Write("c.json", "{}");

        var documents = ManifestReader.Read([dir.Path]);

        Assert.Equal(["y", "z", "b"], documents.Select(d => d.Task!.Metadata.Name));
        Assert.All(documents, d => Assert.StartsWith(dir.Path, d.Source.File, StringComparison.Ordinal));
    }

    [Fact]
    public void A_missing_path_throws_file_not_found_naming_it() =>
        Assert.Equal(
            "/no/such/dir: no such file or directory",
            Assert.Throws<FileNotFoundException>(() => ManifestReader.Read(["/no/such/dir"])).Message);

    [Fact]
    public void The_same_task_twice_is_an_error_on_the_second_definition()
    {
        var documents = ManifestReader.ReadText(Task("twice") + "\n---\n" + Task("twice"), "t.yaml");

        var marked = DuplicateTasks.Mark(documents);

        Assert.True(marked[0].IsValid);
        Assert.Equal(["t.yaml[1] default/twice: metadata.name: default/twice is already defined in t.yaml[0]"], marked[1].ErrorLines());
    }

    [Fact]
    public void A_file_that_cannot_be_read_is_one_invalid_document_and_the_others_are_read()
    {
        using var dir = new TempDirectory();
        dir.Write("good.yaml", Task("good"));
        var dangling = System.IO.Path.Combine(dir.Path, "dangling.yaml");
        File.CreateSymbolicLink(dangling, "/no/such/target");

        var documents = ManifestReader.Read([dir.Path]);

        Assert.Equal(2, documents.Count);
        Assert.StartsWith($"{dangling}[0] ?: the file cannot be read: ", Assert.Single(documents[0].ErrorLines()), StringComparison.Ordinal);
        Assert.True(documents[1].IsValid);
    }
}
