using Dtask.Core.Durations;
using Dtask.Core.Model;
using Microsoft.Extensions.Logging;

namespace Dtask.Operator;

/// <summary>The operator's log messages (source-generated, so disabled levels cost nothing).</summary>
internal static partial class OperatorLog
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "{Outcome} (generation {Generation}, owner {Owner})")]
    public static partial void Wrote(ILogger logger, Reconciliation.TaskOutcome outcome, long? generation, Core.Manifests.TaskOwner owner);

    [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "A concurrent write changed {Keys}; reading again (attempt {Attempt} of {Max})")]
    public static partial void RolledBack(ILogger logger, IReadOnlyList<Consul.Txn.TxnOpError> keys, int attempt, int max);

    [LoggerMessage(EventId = 3, Level = LogLevel.Information, Message = "Deleted {Task} (owned by {Owner}) for {Source}")]
    public static partial void Deleted(ILogger logger, string task, Core.Manifests.TaskOwner? owner, Core.Manifests.TaskOwner source);

    [LoggerMessage(EventId = 4, Level = LogLevel.Debug, Message = "Delete of {Task} raced with another writer; reading again")]
    public static partial void DeleteRaced(ILogger logger, string task);

    [LoggerMessage(EventId = 10, Level = LogLevel.Information, Message = "Reconciled {Directory}: {Result} in {Milliseconds} ms ({Reason})")]
    public static partial void Reconciled(ILogger logger, string directory, Reconciliation.ReconcileResult result, long milliseconds, string reason);

    [LoggerMessage(EventId = 11, Level = LogLevel.Warning, Message = "{Task} is invalid ({Source}): {Errors}{Kept}")]
    public static partial void Invalid(ILogger logger, string task, string? source, string errors, string kept);

    [LoggerMessage(EventId = 15, Level = LogLevel.Warning, Message = "Cannot read {File}: {Problem}; the tasks it declared when last read keep their spec in Consul")]
    public static partial void FileUnreadable(ILogger logger, string file, string problem);

    [LoggerMessage(EventId = 16, Level = LogLevel.Information, Message = "{File} reads again")]
    public static partial void FileReadable(ILogger logger, string file);

    [LoggerMessage(EventId = 12, Level = LogLevel.Warning, Message = "{Message}")]
    public static partial void Conflict(ILogger logger, string message);

    [LoggerMessage(EventId = 13, Level = LogLevel.Error, Message = "Reconcile of {Directory} failed: {Reason}")]
    public static partial void ReconcileFailed(ILogger logger, string directory, string reason);

    [LoggerMessage(EventId = 14, Level = LogLevel.Error, Message = "The manifest directory {Directory} does not exist; nothing reconciled (tasks in Consul are kept)")]
    public static partial void DirectoryMissing(ILogger logger, string directory);

    [LoggerMessage(EventId = 20, Level = LogLevel.Information, Message = "Waiting for the operator lock {Key}")]
    public static partial void WaitingForLock(ILogger logger, string key);

    [LoggerMessage(EventId = 21, Level = LogLevel.Information, Message = "Acquired the operator lock {Key} (session {Session}); reconciling {Directory}")]
    public static partial void Leading(ILogger logger, string key, string session, string directory);

    [LoggerMessage(EventId = 22, Level = LogLevel.Warning, Message = "Lost the operator lock {Key}: {Reason}; reconciling stops until it is acquired again")]
    public static partial void LostLock(ILogger logger, string key, string? reason);

    [LoggerMessage(EventId = 24, Level = LogLevel.Warning, Message = "Lost leadership of {Key}: {Reason}; nothing of the refused write was committed, reconciling stops until the lock is acquired again")]
    public static partial void LostLeadership(ILogger logger, string key, string reason);

    [LoggerMessage(EventId = 23, Level = LogLevel.Warning, Message = "Could not take the operator lock {Key}: {Reason}; retrying")]
    public static partial void LockFailed(ILogger logger, string key, string reason);

    [LoggerMessage(EventId = 30, Level = LogLevel.Information, Message = "Status of {Task}: {Status}")]
    public static partial void StatusChanged(ILogger logger, TaskId task, string status);

    [LoggerMessage(EventId = 31, Level = LogLevel.Warning, Message = "Watching {Prefix} failed: {Reason}; retrying")]
    public static partial void WatchFailed(ILogger logger, string prefix, string reason);

    [LoggerMessage(EventId = 33, Level = LogLevel.Warning, Message = "Reading the status of {Task} failed: {Reason}")]
    public static partial void StatusReadFailed(ILogger logger, TaskId task, string reason);

    [LoggerMessage(EventId = 32, Level = LogLevel.Warning, Message = "The file watcher of {Directory} failed ({Reason}); a full reconcile follows")]
    public static partial void FileWatchFailed(ILogger logger, string directory, string reason);

    [LoggerMessage(EventId = 40, Level = LogLevel.Information, Message = "{Task} changed while it was being reconciled; reading it again")]
    public static partial void ObjectChanged(ILogger logger, TaskId task);

    [LoggerMessage(EventId = 41, Level = LogLevel.Warning, Message = "Reconcile of {Task} failed ({What}: {Reason}); retrying in {Delay}")]
    private static partial void ReconcileOfObjectFailed(ILogger logger, TaskId task, string what, string reason, string delay);

    public static void ReconcileOfObjectFailed(ILogger logger, TaskId task, string what, string reason, TimeSpan delay) =>
        ReconcileOfObjectFailed(logger, task, what, reason, GoDuration.Format(delay));

    [LoggerMessage(EventId = 42, Level = LogLevel.Information, Message = "{Task} is being deleted: removed from Consul, finalizer removed")]
    public static partial void Finalized(ILogger logger, TaskId task);

    [LoggerMessage(EventId = 43, Level = LogLevel.Information, Message = "Listed {Count} ScheduledTasks{Scope} at resource version {Version}; {Changed} to reconcile")]
    public static partial void Listed(ILogger logger, int count, string scope, string? version, int changed);

    [LoggerMessage(EventId = 44, Level = LogLevel.Information, Message = "The watch expired (410 Gone); listing again")]
    public static partial void WatchExpired(ILogger logger);

    [LoggerMessage(EventId = 45, Level = LogLevel.Warning, Message = "{What} failed: {Reason}; retrying in {Delay}")]
    private static partial void ListWatchFailed(ILogger logger, string what, string reason, string delay);

    public static void ListWatchFailed(ILogger logger, string what, string reason, TimeSpan delay) =>
        ListWatchFailed(logger, what, reason, GoDuration.Format(delay));

    [LoggerMessage(EventId = 46, Level = LogLevel.Information, Message = "Campaigning for the Lease {Lease} as {Identity}")]
    public static partial void Campaigning(ILogger logger, string lease, string identity);

    [LoggerMessage(EventId = 47, Level = LogLevel.Information, Message = "Leading (Lease {Lease}, identity {Identity}); reconciling ScheduledTasks{Scope}")]
    public static partial void LeadingLease(ILogger logger, string lease, string identity, string scope);

    [LoggerMessage(EventId = 48, Level = LogLevel.Warning, Message = "Stopped leading (Lease {Lease}); the watch and the reconciler stop until it is won again")]
    public static partial void StoppedLeading(ILogger logger, string lease);

    [LoggerMessage(EventId = 49, Level = LogLevel.Information, Message = "The leader is {Leader}")]
    public static partial void NewLeader(ILogger logger, string leader);

    [LoggerMessage(EventId = 50, Level = LogLevel.Warning, Message = "Leader election: {Reason}")]
    public static partial void ElectionError(ILogger logger, string reason);

    [LoggerMessage(EventId = 51, Level = LogLevel.Error, Message = "Leading failed: {Reason}; stepping back")]
    public static partial void LeadingFailed(ILogger logger, string reason);

    [LoggerMessage(EventId = 52, Level = LogLevel.Warning, Message = "Consul is not reachable yet ({Reason}); retrying in {Delay}")]
    private static partial void ConsulWaiting(ILogger logger, string reason, string delay);

    public static void ConsulWaiting(ILogger logger, string reason, TimeSpan delay) => ConsulWaiting(logger, reason, GoDuration.Format(delay));

    [LoggerMessage(EventId = 53, Level = LogLevel.Error, Message = "Reconcile of {Task} threw: {Reason}; retrying in {Delay}")]
    private static partial void ReconcileThrew(ILogger logger, TaskId task, string reason, string delay);

    public static void ReconcileThrew(ILogger logger, TaskId task, string reason, TimeSpan delay) =>
        ReconcileThrew(logger, task, reason, GoDuration.Format(delay));

    [LoggerMessage(EventId = 54, Level = LogLevel.Information, Message = "Health endpoints on http://{Address}:{Port}/healthz and /readyz")]
    public static partial void HealthListening(ILogger logger, string address, int port);

    [LoggerMessage(EventId = 55, Level = LogLevel.Warning, Message = "Could not scan Consul for tasks whose objects are gone: {Reason}")]
    public static partial void OrphanScanFailed(ILogger logger, string reason);

    [LoggerMessage(EventId = 56, Level = LogLevel.Debug, Message = "Reconciled {Task} ({Milliseconds} ms); {Next}")]
    private static partial void ReconciledObject(ILogger logger, TaskId task, long milliseconds, string next);

    public static void ReconciledObject(ILogger logger, TaskId task, long milliseconds, TimeSpan? requeueAfter)
    {
        if (logger.IsEnabled(LogLevel.Debug))
        {
            ReconciledObject(logger, task, milliseconds, requeueAfter is { } after ? "next in " + GoDuration.Format(after) : "not requeued");
        }
    }

    [LoggerMessage(EventId = 57, Level = LogLevel.Debug, Message = "Watch event {Type} {Task} (generation {Generation}); queued: {Queued}")]
    public static partial void WatchEvent(ILogger logger, k8s.WatchEventType type, TaskId? task, long? generation, bool queued);

    [LoggerMessage(EventId = 58, Level = LogLevel.Debug, Message = "Status of {Task} patched: {Patch}")]
    public static partial void StatusPatched(ILogger logger, TaskId task, string patch);

    [LoggerMessage(EventId = 59, Level = LogLevel.Warning, Message = "The value at {Key} (index {Index}) is not a task spec and is ignored; a source that declares the task replaces it")]
    public static partial void UnreadableSpec(ILogger logger, string key, ulong index);
}
