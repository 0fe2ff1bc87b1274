using System.Diagnostics;
using Dtask.Consul;
using Dtask.Core.State;
using Dtask.Operator.Reconciliation;
using Dtask.Operator.Sources.Directory;

namespace Dtask.Bench.Workload;

/// <summary>What one reconcile of a manifest directory did.</summary>
/// <param name="Elapsed">Wall time.</param>
/// <param name="Requests">HTTP requests the operator's client sent.</param>
/// <param name="Writes">Writes (transactions) it sent.</param>
/// <param name="Created">Tasks created.</param>
/// <param name="Updated">Tasks updated.</param>
/// <param name="Unchanged">Tasks left as they were.</param>
internal sealed record ReconcileRun(TimeSpan Elapsed, long Requests, long Writes, int Created, int Updated, int Unchanged);

/// <summary>
/// Puts a workload into Consul the way a GitOps checkout would: manifests written to a directory (50 documents a file)
/// and reconciled by the operator's <see cref="DirectorySource"/>.
/// </summary>
internal sealed class TaskLoader : IDisposable
{
    private const int DocumentsPerFile = 50;
    private readonly DirectoryInfo folder = Directory.CreateTempSubdirectory("dtask-bench-manifests-");
    private readonly DirectorySource source;
    private readonly ConsulClient client;

    public TaskLoader(ConsulClient client, KvLayout layout)
    {
        this.client = client ?? throw new ArgumentNullException(nameof(client));
        source = new DirectorySource(new DirectorySourceOptions(folder.FullName), new TaskReconciler(client, layout));
    }

    /// <summary>Replaces the directory's manifests with <paramref name="tasks"/>.</summary>
    public async Task WriteAsync(IReadOnlyList<BenchTask> tasks, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(tasks);
        foreach (var file in folder.GetFiles("*.yaml"))
        {
            file.Delete();
        }

        for (var start = 0; start < tasks.Count; start += DocumentsPerFile)
        {
            var batch = tasks.Skip(start).Take(DocumentsPerFile).Select(t => t.ToYaml());
            await File.WriteAllTextAsync(Path.Combine(folder.FullName, $"tasks-{start / DocumentsPerFile:00000}.yaml"),
                string.Join("---\n", batch), cancellationToken);
        }
    }

    /// <summary>Reconciles the directory into KV once.</summary>
    public async Task<ReconcileRun> ReconcileAsync(CancellationToken cancellationToken)
    {
        var before = client.Requests.Snapshot();
        var clock = Stopwatch.StartNew();
        var result = await source.ReconcileAsync("benchmark", cancellationToken)
            ?? throw new InvalidOperationException("the manifest directory vanished");
        var elapsed = clock.Elapsed;
        var spent = client.Requests.Snapshot().Since(before);
        var invalid = result.Count(TaskAction.Invalid) + result.Count(TaskAction.Conflict);
        if (invalid > 0)
        {
            throw new InvalidOperationException($"{invalid} benchmark manifests were refused: {string.Join("; ", result.Outcomes.Where(o => o.Errors.Count > 0).Take(3).Select(o => o.ToString()))}");
        }

        return new ReconcileRun(elapsed, spent.Requests, spent.Writes, result.Count(TaskAction.Created), result.Count(TaskAction.Configured), result.Count(TaskAction.Unchanged));
    }

    /// <summary>Writes and reconciles <paramref name="tasks"/>.</summary>
    public async Task<ReconcileRun> LoadAsync(IReadOnlyList<BenchTask> tasks, CancellationToken cancellationToken)
    {
        await WriteAsync(tasks, cancellationToken);
        return await ReconcileAsync(cancellationToken);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        try
        {
            folder.Delete(recursive: true);
        }
        catch (IOException)
        {
            // Harmless.
        }
    }
}
