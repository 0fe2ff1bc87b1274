using System.Text;
using Dtask.Consul;
using Dtask.Consul.Http;
using Dtask.Consul.Kv;
using Dtask.Consul.Locking;
using Dtask.Consul.Txn;
using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Executor.Claims;

namespace Dtask.Executor.Ledger;

/// <summary>
/// The task ledger in Consul KV (<see cref="KvLayout"/>): reads through <see cref="RunStateStore"/>, claims through
/// <see cref="SlotClaimer"/>, run updates through <see cref="RunRecorder"/>, markers through <see cref="SlotMarker"/>, and
/// lock watches through <see cref="LockKeyWatch"/>. Its parts are made once and shared by every call.
/// </summary>
public sealed class ConsulTaskLedger : ITaskLedger, IAsyncDisposable
{
    private readonly TimeProvider time;
    private readonly SlotClaimer claimer;
    private readonly RunRecorder recorder;
    private readonly SlotMarker marker;
    private readonly Lazy<RunRecordBatchReader> batches;
    private readonly RunRecordBatchReader? claimReads;
    private readonly TxnBatcher? claimTxns;
    private readonly ConsulClient watches;
    private readonly ConsulClient membership;
    private int disposed;

    /// <summary>Creates the ledger on <paramref name="client"/> under <paramref name="layout"/>.</summary>
    /// <param name="client">The Consul client of claims, runs and markers.</param>
    /// <param name="layout">The KV layout.</param>
    /// <param name="time">The clock.</param>
    /// <param name="watches">The client of the folder watches (long blocking queries); <paramref name="client"/> when null.</param>
    /// <param name="membership">The client of the node registration, kept apart so a burst of claims cannot delay it;
    /// <paramref name="client"/> when null.</param>
    /// <param name="batchClaims">Claims due at the same instant share requests: their first consistent reads ride in
    /// consistent read-only transactions, their claim and finish transactions in combined ones (<see cref="TxnBatcher"/>).
    /// Each keeps its own meaning; a herd costs a few requests instead of two per slot.</param>
    public ConsulTaskLedger(ConsulClient client, KvLayout layout, TimeProvider? time = null, ConsulClient? watches = null, ConsulClient? membership = null,
        bool batchClaims = false)
    {
        ArgumentNullException.ThrowIfNull(client);
        this.time = time ?? TimeProvider.System;
        this.watches = watches ?? client;
        this.membership = membership ?? client;
        Store = new RunStateStore(client, layout);
        if (batchClaims)
        {
            claimReads = new RunRecordBatchReader(Store, ConsistencyMode.Consistent);
            claimTxns = new TxnBatcher(client.Txn);
        }

        claimer = new SlotClaimer(Store, this.time, claimReads, claimTxns);
        recorder = new RunRecorder(Store, this.time, claimTxns);
        marker = new SlotMarker(Store, this.time);
        batches = new Lazy<RunRecordBatchReader>(() => new RunRecordBatchReader(Store), LazyThreadSafetyMode.ExecutionAndPublication);
    }

    /// <summary>The store the ledger reads through (its client and layout).</summary>
    public RunStateStore Store { get; }

    /// <inheritdoc/>
    public Task<StoredRun> ReadRunAsync(TaskId task, CancellationToken cancellationToken = default) =>
        Store.ReadRunAsync(task, cancellationToken);

    /// <inheritdoc/>
    public Task<StoredRun> ReadRunBatchedAsync(TaskId task, CancellationToken cancellationToken = default) =>
        batches.Value.ReadAsync(task, cancellationToken);

    /// <inheritdoc/>
    public async Task<RunRecord?> PeekRunAsync(TaskId task, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        var pair = (await Store.Client.Kv.GetAsync(Store.Layout.RunKey(task.Namespace, task.Name), QueryOptions.StaleRead, cancellationToken).ConfigureAwait(false)).Value;
        return pair is null ? null : RunStateStore.Decode(pair.Value);
    }

    /// <inheritdoc/>
    public async Task WaitForRunChangeAsync(TaskId task, TimeSpan maxWait, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        var runKey = Store.Layout.RunKey(task.Namespace, task.Name);
        var current = (await Store.Client.Kv.GetAsync(runKey, QueryOptions.StaleRead, cancellationToken).ConfigureAwait(false)).Value;
        if (current is null || RunStateStore.Decode(current.Value) is not { IsRunning: true })
        {
            return; // Already changed since the caller looked.
        }

        await Store.Client.Kv.GetAsync(runKey, QueryOptions.StaleRead with { WaitIndex = current.ModifyIndex, WaitTime = maxWait }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async Task<bool> HasHistoryAsync(TaskId task, long slot, bool consistent, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        var key = Store.Layout.HistoryKey(task.Namespace, task.Name, slot);
        return (await Store.Client.Kv.GetAsync(key, consistent ? QueryOptions.ConsistentRead : QueryOptions.StaleRead, cancellationToken).ConfigureAwait(false)).Value is not null;
    }

    /// <inheritdoc/>
    public Task<IReadOnlyList<RunRecord>> ReadHistoryAsync(TaskId task, CancellationToken cancellationToken = default) =>
        Store.ReadHistoryAsync(task, cancellationToken);

    /// <inheritdoc/>
    public Task<ClaimOutcome> ClaimAsync(TaskId task, long slot, string node, string sessionId, string? runId = null, CancellationToken cancellationToken = default) =>
        claimer.ClaimAsync(task, slot, node, sessionId, runId, cancellationToken);

    /// <inheritdoc/>
    public Task<ClaimOutcome> ClaimManualAsync(TaskId task, ManualTrigger trigger, string node, string sessionId, string runId, CancellationToken cancellationToken = default) =>
        claimer.ClaimManualAsync(task, trigger, node, sessionId, runId, cancellationToken);

    /// <inheritdoc/>
    public Task<RunRecord?> ReleaseUnconfirmedAsync(TaskId task, long slot, string runId, string sessionId, CancellationToken cancellationToken = default) =>
        claimer.ReleaseUnconfirmedAsync(task, slot, runId, sessionId, cancellationToken);

    /// <inheritdoc/>
    public Task<SlotClaim?> StartAttemptAsync(SlotClaim claim, int attempt, CancellationToken lockLost, CancellationToken cancellationToken = default) =>
        recorder.StartAttemptAsync(claim, attempt, lockLost, cancellationToken);

    /// <inheritdoc/>
    public Task<FinishResult> FinishAsync(SlotClaim claim, RunRecord final, int historyLimit, CancellationToken lockLost, CancellationToken cancellationToken = default) =>
        recorder.FinishAsync(claim, final, historyLimit, lockLost, cancellationToken);

    /// <inheritdoc/>
    public Task<MarkStatus> RecordSkippedAsync(TaskId task, long slot, string node, string reason, ulong runIndex, CancellationToken cancellationToken = default) =>
        marker.RecordSkippedAsync(task, slot, node, reason, runIndex, cancellationToken);

    /// <inheritdoc/>
    public Task<MarkStatus> RecordMissedAsync(TaskId task, long slot, string node, string reason, int historyLimit, CancellationToken cancellationToken = default) =>
        marker.RecordMissedAsync(task, slot, node, reason, historyLimit, cancellationToken);

    /// <inheritdoc/>
    public Task<bool> TryWriteHistoryAsync(TaskId task, RunRecord record, CancellationToken cancellationToken = default) =>
        marker.TryWriteHistoryAsync(task, record, cancellationToken);

    /// <inheritdoc/>
    public async Task<ManualTrigger?> RequestTriggerAsync(TaskId task, ControlRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(request);
        ArgumentException.ThrowIfNullOrEmpty(request.Id);
        var key = Store.Layout.TriggerKey(task.Namespace, task.Name, request.Id);
        if (!(await Store.Client.Kv.PutAsync(key, Encoding.UTF8.GetBytes(StateJson.Serialize(request)), new KvPutOptions { Cas = 0 }, cancellationToken).ConfigureAwait(false)).Value)
        {
            return null;
        }

        var stored = (await Store.Client.Kv.GetAsync(key, QueryOptions.ConsistentRead, cancellationToken).ConfigureAwait(false)).Value;
        return new ManualTrigger(request.Id, key, stored?.CreateIndex ?? 0);
    }

    /// <inheritdoc/>
    public async Task<bool> RequestStopAsync(TaskId task, ControlRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(request);
        ArgumentException.ThrowIfNullOrEmpty(request.RunId);
        var key = Store.Layout.StopKey(task.Namespace, task.Name, request.RunId);
        return (await Store.Client.Kv.PutAsync(key, Encoding.UTF8.GetBytes(StateJson.Serialize(request)), new KvPutOptions { Cas = 0 }, cancellationToken).ConfigureAwait(false)).Value;
    }

    /// <inheritdoc/>
    public async Task<bool> HasStopRequestAsync(TaskId task, string runId, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        var key = Store.Layout.StopKey(task.Namespace, task.Name, runId);
        return (await Store.Client.Kv.GetAsync(key, QueryOptions.ConsistentRead, cancellationToken).ConfigureAwait(false)).Value is not null;
    }

    /// <inheritdoc/>
    public async Task ClearStopAsync(TaskId task, string runId, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        await Store.Client.Kv.DeleteAsync(Store.Layout.StopKey(task.Namespace, task.Name, runId), cancellationToken: cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async Task<bool> ConsumeStopAsync(TaskId task, string runId, ulong modifyIndex, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        var key = Store.Layout.StopKey(task.Namespace, task.Name, runId);
        return (await Store.Client.Kv.DeleteAsync(key, new KvDeleteOptions { Cas = modifyIndex }, cancellationToken).ConfigureAwait(false)).Value;
    }

    /// <inheritdoc/>
    public async Task<bool> DropTriggerAsync(TaskId task, ManualTrigger trigger, RunRecord record, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(trigger);
        ArgumentNullException.ThrowIfNull(record);
        var pending = (await Store.Client.Kv.GetAsync(trigger.Key, QueryOptions.ConsistentRead, cancellationToken).ConfigureAwait(false)).Value;
        if (pending is null || pending.CreateIndex != trigger.CreateIndex)
        {
            return false;
        }

        var historyKey = Store.Layout.ManualHistoryKey(task.Namespace, task.Name, trigger.Sequence);
        // Fails when the trigger was claimed (its key deleted) after it was read here.
        var result = (await Store.Client.Txn.ExecuteAsync([.. TxnOp.DeleteExisting(trigger.Key, pending.ModifyIndex), TxnOp.Cas(historyKey, RunStateStore.Encode(record), 0)],
            cancellationToken: cancellationToken).ConfigureAwait(false)).Value;
        return result.Committed;
    }

    /// <inheritdoc/>
    public Task<ConsulResponse<IReadOnlyList<KvPair>>> ListAsync(LedgerFolder folder, QueryOptions query, CancellationToken cancellationToken = default) =>
        watches.Kv.ListAsync(folder switch
        {
            LedgerFolder.Tasks => Store.Layout.TasksPrefix,
            LedgerFolder.Nodes => Store.Layout.NodesPrefix,
            LedgerFolder.Control => Store.Layout.ControlPrefix,
            _ => throw new ArgumentOutOfRangeException(nameof(folder), folder, "no such folder"),
        }, query, cancellationToken);

    /// <summary>The placeholder key that keeps the control folder from being an empty prefix.</summary>
    public string ControlAnchorKey => Store.Layout.ControlPrefix + ".watch";

    /// <inheritdoc/>
    public async Task PlaceControlAnchorAsync(CancellationToken cancellationToken = default)
    {
        if ((await watches.Kv.GetAsync(ControlAnchorKey, QueryOptions.StaleRead, cancellationToken).ConfigureAwait(false)).Value is null)
        {
            await watches.Kv.PutAsync(ControlAnchorKey, ReadOnlyMemory<byte>.Empty, new KvPutOptions { Cas = 0 }, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc/>
    public async Task ReportSpecRefusalAsync(TaskId task, SpecRefusal refusal, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(refusal);
        await watches.Kv.PutAsync(Store.Layout.SpecRefusalKey(task.Namespace, task.Name), Encoding.UTF8.GetBytes(StateJson.Serialize(refusal)),
            cancellationToken: cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async Task<NodeRegistration> RegisterNodeAsync(NodeRecord record, string registrationSession, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(record);
        ArgumentException.ThrowIfNullOrEmpty(registrationSession);
        var key = Store.Layout.NodeKey(record.Node);
        var put = await membership.Kv.PutAsync(key, Encoding.UTF8.GetBytes(StateJson.Serialize(record)), new KvPutOptions { Acquire = registrationSession },
            cancellationToken).ConfigureAwait(false);
        if (put.Value)
        {
            return new NodeRegistration(true, null, put.Meta);
        }

        var holder = (await membership.Kv.GetAsync(key, cancellationToken: cancellationToken).ConfigureAwait(false)).Value?.Session;
        return new NodeRegistration(false, holder, put.Meta);
    }

    /// <inheritdoc/>
    public async Task RemoveNodeAsync(string node, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(node);
        await membership.Kv.DeleteAsync(Store.Layout.NodeKey(node), cancellationToken: cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async Task<bool> ReplaceSpecAsync(TaskId task, string json, ulong modifyIndex, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(json);
        var txn = await Store.Client.Txn.ExecuteAsync([TxnOp.Cas(Store.Layout.TaskKey(task.Namespace, task.Name), KvValue.Utf8(json), modifyIndex)],
            TxnAtomicity.RequireAtomic, cancellationToken).ConfigureAwait(false);
        return txn.Value.Committed;
    }

    /// <inheritdoc/>
    public TaskPlaces Locate(TaskId task) => TaskPlaces.Of(Store.Layout, task);

    /// <inheritdoc/>
    public async Task<StoredSpec?> ReadSpecAsync(TaskId task, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        var pair = (await Store.Client.Kv.GetAsync(Store.Layout.TaskKey(task.Namespace, task.Name), cancellationToken: cancellationToken).ConfigureAwait(false)).Value;
        return pair is null ? null : new StoredSpec(pair.ValueAsString(), pair.ModifyIndex);
    }

    /// <inheritdoc/>
    public async Task CheckSpecsReadableAsync(string taskNamespace, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(taskNamespace);
        await Store.Client.Kv.GetAsync(Store.Layout.TasksPrefix + taskNamespace + "/", cancellationToken: cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async Task<StoredRunEntry?> ReadRunEntryAsync(TaskId task, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        var pair = (await Store.Client.Kv.GetAsync(Store.Layout.RunKey(task.Namespace, task.Name), QueryOptions.ConsistentRead, cancellationToken).ConfigureAwait(false)).Value;
        return pair is null ? null : new StoredRunEntry(pair.Key, RunStateStore.Decode(pair.Value), pair.ModifyIndex);
    }

    /// <inheritdoc/>
    public async Task<IReadOnlyList<StoredRunEntry>> ListHistoryAsync(TaskId task, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        var pairs = (await Store.Client.Kv.ListAsync(Store.Layout.HistoryPrefix(task.Namespace, task.Name), cancellationToken: cancellationToken).ConfigureAwait(false)).Value;
        return [.. pairs.Select(p => new StoredRunEntry(p.Key, RunStateStore.Decode(p.Value), p.ModifyIndex))];
    }

    /// <inheritdoc/>
    public async Task<bool> HasRunStateAsync(TaskId task, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        var keys = await Store.Client.Kv.KeysAsync(Store.Layout.TaskStatePrefix(task.Namespace, task.Name), cancellationToken: cancellationToken).ConfigureAwait(false);
        return keys.Value.Count > 0;
    }

    /// <inheritdoc/>
    public async Task<IReadOnlyList<PendingRequest>> ListControlRequestsAsync(TaskId task, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        var pairs = (await Store.Client.Kv.ListAsync(Store.Layout.TaskControlPrefix(task.Namespace, task.Name), cancellationToken: cancellationToken).ConfigureAwait(false)).Value;
        var requests = new List<PendingRequest>();
        foreach (var pair in pairs)
        {
            if (KvLayout.TrySplitControlKey(pair.Key, Store.Layout.ControlPrefix, out _, out _, out var action, out var id))
            {
                requests.Add(new PendingRequest(action, id, pair.CreateIndex, StateJson.TryDeserialize<ControlRequest>(pair.ValueAsString())));
            }
        }

        return requests;
    }

    /// <inheritdoc/>
    public async Task<IReadOnlyList<HeldLock>> ListHeldLocksAsync(CancellationToken cancellationToken = default)
    {
        var pairs = (await Store.Client.Kv.ListAsync(Store.Layout.StatePrefix, cancellationToken: cancellationToken).ConfigureAwait(false)).Value;
        var held = new List<HeldLock>();
        foreach (var pair in pairs)
        {
            if (pair.Session is { } session && TaskOfLockKey(Store.Layout, pair.Key) is { } task)
            {
                held.Add(new HeldLock(task, session));
            }
        }

        return held;
    }

    /// <summary>The task whose lock key <paramref name="key"/> is; null for any other key.</summary>
    private static TaskId? TaskOfLockKey(KvLayout layout, string key)
    {
        if (!key.StartsWith(layout.StatePrefix, StringComparison.Ordinal))
        {
            return null;
        }

        var parts = key[layout.StatePrefix.Length..].Split('/');
        return parts.Length == 3 && parts[0].Length > 0 && parts[1].Length > 0 && key == layout.LockKey(parts[0], parts[1]) ? new TaskId(parts[0], parts[1]) : null;
    }

    /// <summary>Stops the batched reads (<see cref="ReadRunBatchedAsync"/>) and claims; those waiting are cancelled.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref disposed, 1) != 0)
        {
            return;
        }

        if (batches.IsValueCreated)
        {
            await batches.Value.DisposeAsync().ConfigureAwait(false);
        }

        if (claimReads is not null)
        {
            await claimReads.DisposeAsync().ConfigureAwait(false);
        }

        if (claimTxns is not null)
        {
            await claimTxns.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <inheritdoc/>
    public ILockWatch WatchLock(TaskId task, ILedgerSession session, TimeSpan startAfter = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        return LockKeyWatch.Start(Store.Client, Store.Layout.LockKey(task.Namespace, task.Name), session, time: time, startAfter: startAfter);
    }
}
