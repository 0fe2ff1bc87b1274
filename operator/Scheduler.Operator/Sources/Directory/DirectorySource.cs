using System.Diagnostics;
using Dtask.Core.Manifests;
using Dtask.Operator.Reconciliation;
using Dtask.Operator.Status;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Dtask.Operator.Sources.Directory;

/// <summary>
/// One full reconcile of a manifest directory: read every file (within <see cref="YamlLimits"/>), hand every
/// document to the <see cref="TaskReconciler"/> as owner <c>dir:&lt;full path&gt;</c> with pruning, and report what
/// was invalid or in conflict. One bad file never blocks the others: the valid documents of every other file are
/// reconciled, and a file that cannot be read (unreadable, too large, broken YAML, a name that cannot be read) stands
/// for what it declared the last time it could be read — those tasks keep their last valid spec in Consul and are
/// not pruned, and each carries a <see cref="SourceProblem"/> naming the file and the reason until it reads again.
/// Tasks are pruned only when their file is removed or a version of it that can be read no longer declares them. A
/// file broken since this replica started has no known declarations: while it is, nothing is pruned. A missing
/// directory reconciles nothing (it does not prune every task: a mount that vanished is not a request to delete).
/// Problems are logged when they appear, change or go away, not at every pass.
/// </summary>
public sealed class DirectorySource
{
    private readonly TaskReconciler reconciler;
    private readonly ILogger logger;
    private readonly Dictionary<string, IReadOnlyList<(string Namespace, string Name)>> lastDeclared = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> reported = new(StringComparer.Ordinal);
    private readonly Lock gate = new();
    private string? syncedProblems;

    /// <summary>Creates the source of <paramref name="options"/>' directory.</summary>
    public DirectorySource(DirectorySourceOptions options, TaskReconciler reconciler, ILogger<DirectorySource>? logger = null)
    {
        Options = options ?? throw new ArgumentNullException(nameof(options));
        this.reconciler = reconciler ?? throw new ArgumentNullException(nameof(reconciler));
        this.logger = (ILogger?)logger ?? NullLogger.Instance;
        Owner = TaskOwner.Directory(options.FullPath);
    }

    /// <summary>The options.</summary>
    public DirectorySourceOptions Options { get; }

    /// <summary>
    /// Starts a term of leadership: forgets which problems this replica last stored, so the next reconcile reads them
    /// from Consul again (another replica may have changed them meanwhile).
    /// </summary>
    public void StartTerm() => Volatile.Write(ref syncedProblems, null);

    /// <summary><c>dir:&lt;full path&gt;</c>.</summary>
    public TaskOwner Owner { get; }

    /// <summary>Reads the directory and reconciles it; null when the directory does not exist or cannot be listed.</summary>
    public async Task<ReconcileResult?> ReconcileAsync(string reason, CancellationToken cancellationToken = default)
    {
        if (!System.IO.Directory.Exists(Options.FullPath))
        {
            OperatorLog.DirectoryMissing(logger, Options.FullPath);
            return null;
        }

        var started = Stopwatch.GetTimestamp();
        IReadOnlyList<string> files;
        try
        {
            files = ManifestReader.Files(Options.FullPath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The directory changed while it was listed: the watcher has signalled it, the next round reads again.
            OperatorLog.ReconcileFailed(logger, Options.FullPath, e.Message);
            return null;
        }

        var documents = DuplicateTasks.Mark([.. files.SelectMany(ReadFile)]);
        var (desired, problems) = Declarations(files, documents);
        var result = await reconciler.ReconcileAsync(Owner, desired, prune: true, cancellationToken).ConfigureAwait(false);
        var kept = result.With(TaskAction.Invalid).Where(o => o.PreviousSpecKept).ToList();
        var stored = kept.GroupBy(o => o.Key, StringComparer.Ordinal).ToDictionary(g => g.Key,
            g => new SourceProblem(Owner.ToString(), g.First().Source ?? "?", [.. g.First().Errors.Select(e => e.ToString())]), StringComparer.Ordinal);
        var snapshot = string.Join("\n", stored.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => p.Key + " " + p.Value.ToJson()));
        if (!string.Equals(snapshot, Volatile.Read(ref syncedProblems), StringComparison.Ordinal))
        {
            // Read and written only when they differ from what this replica last made them (and once per term).
            if (await reconciler.SyncProblemsAsync(Owner, stored, cancellationToken).ConfigureAwait(false))
            {
                Volatile.Write(ref syncedProblems, snapshot);
            }
        }

        Report(problems, result);

        var elapsed = (long)Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        OperatorLog.Reconciled(logger, Options.FullPath, result, elapsed, reason);
        return result;
    }

    /// <summary>One file's documents; a file that cannot be read at all is one invalid document naming why.</summary>
    private IEnumerable<ManifestDocument> ReadFile(string file)
    {
        try
        {
            return ManifestReader.ReadFile(file);
        }
#pragma warning disable CA1031 // Whatever one file does, the others are reconciled.
        catch (Exception e)
#pragma warning restore CA1031
        {
            var check = new Core.Validation.TaskCheck(null, [new Core.Validation.FieldError("", "the file cannot be read: " + e.Message)], "?");
            return [new ManifestDocument(new ManifestSource(file, 0), check)];
        }
    }

    /// <summary>
    /// What the directory declares, file by file: every document of a file that can be read (and its names remembered);
    /// for a file that cannot, its documents whose names can be read, and each task it declared when last read, as an
    /// invalid declaration carrying the file's errors. Also the problem of each bad file, for the log.
    /// </summary>
    private (List<DesiredTask> Desired, Dictionary<string, string> Problems) Declarations(IReadOnlyList<string> files, IReadOnlyList<ManifestDocument> documents)
    {
        var desired = new List<DesiredTask>();
        var problems = new Dictionary<string, string>(StringComparer.Ordinal);
        var declaredAnywhere = documents.Select(DesiredTask.From).Where(t => t.HasName).Select(t => $"{t.Namespace}/{t.Name}").ToHashSet(StringComparer.Ordinal);
        lock (gate)
        {
            foreach (var file in lastDeclared.Keys.Where(f => !files.Contains(f, StringComparer.Ordinal)).ToList())
            {
                lastDeclared.Remove(file);
            }

            foreach (var group in documents.GroupBy(d => d.Source.File, StringComparer.Ordinal))
            {
                var file = group.Key;
                var tasks = group.Select(DesiredTask.From).ToList();
                var unreadable = tasks.Where(t => !t.HasName).ToList();
                var named = tasks.Where(t => t.HasName).ToList();
                if (unreadable.Count == 0)
                {
                    desired.AddRange(tasks);
                    lastDeclared[file] = [.. named.Select(t => (t.Namespace!, t.Name!))];
                    continue;
                }

                var errors = unreadable.SelectMany(t => t.Errors).ToList();
                problems[file] = $"{unreadable[0].Source}: {string.Join("; ", errors)}";
                desired.AddRange(named);
                if (!lastDeclared.TryGetValue(file, out var before))
                {
                    // Never read: it could declare any task, so it keeps the plan from pruning.
                    desired.AddRange(unreadable);
                    continue;
                }

                foreach (var (ns, name) in before.Where(b => !declaredAnywhere.Contains($"{b.Namespace}/{b.Name}")))
                {
                    desired.Add(new DesiredTask(ns, name, null, errors, unreadable[0].Source));
                }
            }
        }

        return (desired, problems);
    }

    /// <summary>Logs each bad file and each invalid or conflicting task when it appears or changes, and each that is fixed.</summary>
    private void Report(Dictionary<string, string> problems, ReconcileResult result)
    {
        var now = new Dictionary<string, (string Text, Action Log)>(StringComparer.Ordinal);
        foreach (var (file, problem) in problems)
        {
            now["file " + file] = (problem, () => OperatorLog.FileUnreadable(logger, file, problem));
        }

        foreach (var outcome in result.With(TaskAction.Invalid).Where(o => o.Namespace != "?"))
        {
            var errors = string.Join("; ", outcome.Errors);
            var kept = outcome.PreviousSpecKept ? "; the previous valid spec stays in Consul" : "";
            now[$"task {outcome.Key} {outcome.Source}"] = (errors + kept, () => OperatorLog.Invalid(logger, outcome.Key, outcome.Source, errors, kept));
        }

        foreach (var outcome in result.With(TaskAction.Conflict))
        {
            now["conflict " + outcome.Key] = (outcome.ToString(), () => OperatorLog.Conflict(logger, outcome.ToString()));
        }

        lock (gate)
        {
            foreach (var (key, (text, log)) in now)
            {
                if (!reported.TryGetValue(key, out var before) || before != text)
                {
                    log();
                    reported[key] = text;
                }
            }

            foreach (var key in reported.Keys.Where(k => !now.ContainsKey(k)).ToList())
            {
                reported.Remove(key);
                if (key.StartsWith("file ", StringComparison.Ordinal))
                {
                    OperatorLog.FileReadable(logger, key["file ".Length..]);
                }
            }
        }
    }
}
