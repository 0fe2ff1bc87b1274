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

    [LoggerMessage(EventId = 23, Level = LogLevel.Warning, Message = "Could not take the operator lock {Key}: {Reason}; retrying")]
    public static partial void LockFailed(ILogger logger, string key, string reason);

    [LoggerMessage(EventId = 30, Level = LogLevel.Information, Message = "Status of {Task}: {Status}")]
    public static partial void StatusChanged(ILogger logger, Status.TaskName task, string status);

    [LoggerMessage(EventId = 31, Level = LogLevel.Warning, Message = "Watching {Prefix} failed: {Reason}; retrying")]
    public static partial void WatchFailed(ILogger logger, string prefix, string reason);

    [LoggerMessage(EventId = 33, Level = LogLevel.Warning, Message = "Reading the status of {Task} failed: {Reason}")]
    public static partial void StatusReadFailed(ILogger logger, Status.TaskName task, string reason);

    [LoggerMessage(EventId = 32, Level = LogLevel.Warning, Message = "The file watcher of {Directory} failed ({Reason}); a full reconcile follows")]
    public static partial void FileWatchFailed(ILogger logger, string directory, string reason);
}
