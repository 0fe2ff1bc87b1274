using System.Diagnostics;
using Dtask.Core.Manifests;
using Dtask.Operator.Reconciliation;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Dtask.Operator.Sources.Directory;

/// <summary>
/// One full reconcile of a manifest directory: read every document (valid or not), hand them to the
/// <see cref="TaskReconciler"/> as owner <c>dir:&lt;full path&gt;</c> with pruning, and log what was invalid or in
/// conflict. A missing directory reconciles nothing (it does not prune every task: a mount that vanished is not
/// a request to delete).
/// </summary>
public sealed class DirectorySource
{
    private readonly TaskReconciler reconciler;
    private readonly ILogger logger;

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

    /// <summary><c>dir:&lt;full path&gt;</c>.</summary>
    public TaskOwner Owner { get; }

    /// <summary>Reads the directory and reconciles it; null when the directory does not exist.</summary>
    public async Task<ReconcileResult?> ReconcileAsync(string reason, CancellationToken cancellationToken = default)
    {
        if (!System.IO.Directory.Exists(Options.FullPath))
        {
            OperatorLog.DirectoryMissing(logger, Options.FullPath);
            return null;
        }

        var started = Stopwatch.GetTimestamp();
        IReadOnlyList<ManifestDocument> documents;
        try
        {
            documents = ManifestReader.Read([Options.FullPath]);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A file removed or replaced while it was read: the watcher has signalled it, the next round reads again.
            OperatorLog.ReconcileFailed(logger, Options.FullPath, e.Message);
            return null;
        }

        var result = await reconciler.ReconcileAsync(Owner, documents, prune: true, cancellationToken).ConfigureAwait(false);
        foreach (var outcome in result.With(TaskAction.Invalid))
        {
            OperatorLog.Invalid(logger, outcome.Key, outcome.Source, string.Join("; ", outcome.Errors),
                outcome.PreviousSpecKept ? "; the previous valid spec stays in Consul" : "");
        }

        foreach (var outcome in result.With(TaskAction.Conflict))
        {
            OperatorLog.Conflict(logger, outcome.ToString());
        }

        var elapsed = (long)Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        OperatorLog.Reconciled(logger, Options.FullPath, result, elapsed, reason);
        return result;
    }
}
