using System.Collections.Concurrent;
using Dtask.Core.Manifests;
using Dtask.Core.State;
using Dtask.Operator.Reconciliation;
using Dtask.Operator.Sources.Directory;
using Dtask.Operator.Status;
using Dtask.Operator.Tests.Support;
using Microsoft.Extensions.Logging;

namespace Dtask.Operator.Tests;

/// <summary>The directory source with a file that cannot be read among good ones, reconciled step by step on the real agent.</summary>
public sealed class BadFileTests(ConsulFixture consul) : IDisposable
{
    private const string Unclosed = "apiVersion: dtask.dev/v1alpha1\nkind: ScheduledTask\nmetadata: {name: b, namespace: ops\nspec: [every: 1m\n";
    private readonly KvLayout layout = ConsulFixture.NewLayout();
    private readonly TempDirectory folder = new();
    private readonly Lines log = new();
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose() => folder.Dispose();

    private async Task<KvTaskSpec?> StoredAsync(string name)
    {
        var pair = (await consul.Client.Kv.GetAsync(layout.TaskKey("ops", name), cancellationToken: Ct)).Value;
        return pair is null ? null : KvTaskSpec.Parse(pair.ValueAsString());
    }

    private async Task<SourceProblem?> ProblemAsync(string name)
    {
        var pair = (await consul.Client.Kv.GetAsync(SourceProblem.KeyFor(layout, "ops", name), cancellationToken: Ct)).Value;
        return pair is null ? null : SourceProblem.TryParse(pair.ValueAsString());
    }

    private DirectorySource NewSource(Microsoft.Extensions.Logging.ILogger<DirectorySource> logger) =>
        new(new DirectorySourceOptions(folder.Path), new TaskReconciler(consul.Client, layout), logger);

    [Fact]
    public async Task A_broken_file_keeps_its_tasks_and_reports_them_while_the_good_files_are_reconciled_and_pruned()
    {
        folder.Write("a.yaml", Manifest.Yaml("ops", "a"));
        var b = folder.Write("b.yaml", Manifest.Yaml("ops", "b"));
        folder.Write("c.yaml", Manifest.Yaml("ops", "c"));
        var source = NewSource(log);
        var first = (await source.ReconcileAsync("test", Ct))!;
        Assert.Equal(3, first.Count(TaskAction.Created));

        // b.yaml breaks; meanwhile a.yaml changes and c.yaml is removed.
        folder.Write("b.yaml", Unclosed);
        folder.Write("a.yaml", Manifest.Yaml("ops", "a", every: "2m"));
        File.Delete(Path.Combine(folder.Path, "c.yaml"));
        var broken = (await source.ReconcileAsync("test", Ct))!;

        Assert.Equal("2m", (await StoredAsync("a"))!.Spec.Every);
        Assert.Null(await StoredAsync("c"));
        Assert.Equal(("1m", 1L), ((await StoredAsync("b"))!.Spec.Every, (await StoredAsync("b"))!.Generation));
        var invalid = Assert.Single(broken.With(TaskAction.Invalid));
        Assert.Equal(("ops/b", true), (invalid.Key, invalid.PreviousSpecKept));
        var problem = (await ProblemAsync("b"))!;
        Assert.Equal(($"dir:{folder.Path}", $"{b}[0]"), (problem.Owner, problem.Source));
        Assert.StartsWith("invalid YAML: line 3, column ", Assert.Single(problem.Errors), StringComparison.Ordinal);
        Assert.Contains("the flow mapping opened at line 3, column 11 is not closed", problem.Errors[0], StringComparison.Ordinal);
        Assert.Single(log.With("Cannot read " + b));

        // What get tasks and describe show: Ready=False naming the file, line and column.
        var observation = await new TaskObservationReader(consul.Client, layout).ReadAsync("ops", "b", Ct);
        var ready = observation.StatusAt(DateTimeOffset.UtcNow).Conditions!.Single(c => c.Type == "Ready");
        Assert.Equal(("False", "Invalid"), (ready.Status, ready.Reason));
        Assert.StartsWith($"{b}[0]: invalid YAML: line 3, column ", ready.Message, StringComparison.Ordinal);
        var all = await new TaskObservationReader(consul.Client, layout).ReadAllAsync(Ct);
        Assert.Equal(["ops/b"], all.Where(o => o.OwnersProblem is not null).Select(o => o.Key));

        // The next pass writes nothing and logs nothing new.
        var again = (await source.ReconcileAsync("resync", Ct))!;
        Assert.Equal(0, again.Writes);
        Assert.Single(log.With("Cannot read " + b));

        // Broken another way: a new line; still kept.
        folder.Write("b.yaml", "spec: " + new string('[', 50_000));
        await source.ReconcileAsync("test", Ct);
        Assert.Equal(2, log.With("Cannot read " + b).Count);
        Assert.Contains("collections nest deeper than 32 levels", Assert.Single((await ProblemAsync("b"))!.Errors), StringComparison.Ordinal);
        Assert.Equal("1m", (await StoredAsync("b"))!.Spec.Every);

        // Fixed: written, the problem is gone, and the log says so.
        folder.Write("b.yaml", Manifest.Yaml("ops", "b", every: "5m"));
        var fixedResult = (await source.ReconcileAsync("test", Ct))!;
        Assert.Equal(TaskAction.Configured, fixedResult.Outcomes.Single(o => o.Key == "ops/b").Action);
        Assert.Equal("5m", (await StoredAsync("b"))!.Spec.Every);
        Assert.Null(await ProblemAsync("b"));
        Assert.Single(log.With(b + " reads again"));

        // Stops declaring the task in a version that parses: pruned.
        folder.Write("b.yaml", Manifest.Yaml("ops", "b2"));
        await source.ReconcileAsync("test", Ct);
        Assert.Null(await StoredAsync("b"));
        Assert.NotNull(await StoredAsync("b2"));
    }

    [Fact]
    public async Task A_file_broken_since_the_start_prunes_nothing_until_it_reads_again()
    {
        folder.Write("a.yaml", Manifest.Yaml("ops", "a"));
        folder.Write("b.yaml", Manifest.Yaml("ops", "b"));
        await NewSource(log).ReconcileAsync("test", Ct);

        // A new replica (nothing known of b.yaml) starts with b.yaml broken and a.yaml gone: b.yaml could declare ops/a.
        folder.Write("b.yaml", Unclosed);
        File.Delete(Path.Combine(folder.Path, "a.yaml"));
        var restarted = NewSource(log);
        folder.Write("n.yaml", Manifest.Yaml("ops", "n"));
        var result = (await restarted.ReconcileAsync("test", Ct))!;

        Assert.NotNull(await StoredAsync("a"));
        Assert.NotNull(await StoredAsync("b"));
        Assert.NotNull(await StoredAsync("n"));
        Assert.Equal(0, result.Count(TaskAction.Deleted));

        folder.Write("b.yaml", Manifest.Yaml("ops", "b"));
        await restarted.ReconcileAsync("test", Ct);
        Assert.Null(await StoredAsync("a"));
        Assert.NotNull(await StoredAsync("b"));
    }

    [Fact]
    public async Task An_invalid_file_keeps_the_previous_spec_and_reports_the_field()
    {
        var b = folder.Write("b.yaml", Manifest.Yaml("ops", "b"));
        var source = NewSource(log);
        await source.ReconcileAsync("test", Ct);

        folder.Write("b.yaml", Manifest.Yaml("ops", "b", every: "soon"));
        await source.ReconcileAsync("test", Ct);

        Assert.Equal("1m", (await StoredAsync("b"))!.Spec.Every);
        var problem = (await ProblemAsync("b"))!;
        Assert.Equal($"{b}[0]", problem.Source);
        Assert.StartsWith("spec.every: ", Assert.Single(problem.Errors), StringComparison.Ordinal);
        Assert.Single(log.With("ops/b is invalid"));
        await source.ReconcileAsync("resync", Ct);
        Assert.Single(log.With("ops/b is invalid"));
    }

    /// <summary>The source's log lines, kept for assertions and echoed to the test output.</summary>
    private sealed class Lines : Microsoft.Extensions.Logging.ILogger<DirectorySource>
    {
        private readonly ConcurrentQueue<string> lines = new();

        public List<string> With(string text) => [.. lines.Where(l => l.Contains(text, StringComparison.Ordinal))];

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var line = formatter(state, exception);
            lines.Enqueue(line);
            TestContext.Current.TestOutputHelper?.WriteLine($"{logLevel}: {line}");
        }
    }
}
