using System.Threading.Channels;
using Dtask.Consul;
using Dtask.Consul.Errors;
using Dtask.Consul.Http;
using Dtask.Consul.Txn;
using Dtask.Core.Model;
using Dtask.Core.State;

namespace Dtask.Executor.Claims;

/// <summary>
/// Reads the run records of many tasks with few requests: reads asked for together (every task loop at start, or the
/// new tasks of a change) are answered by read-only transactions of up to <see cref="ConsulTxn.MaxOperations"/>
/// <c>get-tree</c> operations on <c>state/&lt;ns&gt;/&lt;name&gt;/run</c> (a missing key answers nothing instead of failing
/// the transaction), at most <see cref="ParallelBatches"/> at a time. History values are never read. 10,000 tasks cost
/// 157 requests instead of 10,000.
/// </summary>
/// <remarks>
/// With the default consistency the answers are not linearizable (the leader answers from its state without a verify
/// round): they are used to plan, and every claim reads the record consistently again, through a reader made with
/// <see cref="ConsistencyMode.Consistent"/> when claims are batched.
/// </remarks>
public sealed class RunRecordBatchReader : IAsyncDisposable
{
    /// <summary>How many transactions are in flight at once.</summary>
    public const int ParallelBatches = 4;

    private readonly RunStateStore store;
    private readonly ConsistencyMode consistency;
    private readonly Channel<PendingRead> queue = Channel.CreateUnbounded<PendingRead>(new UnboundedChannelOptions { SingleReader = true });
    private readonly SemaphoreSlim slots = new(ParallelBatches);
    private readonly CancellationTokenSource stop = new();
    private readonly Task worker;

    /// <summary>Starts the reader.</summary>
    /// <param name="store">Where the run records are.</param>
    /// <param name="consistency">The reads' consistency: <see cref="ConsistencyMode.Consistent"/> answers as a consistent
    /// read of each key would (the claims' reads), with one leader check per transaction.</param>
    public RunRecordBatchReader(RunStateStore store, ConsistencyMode consistency = ConsistencyMode.Default)
    {
        this.store = store ?? throw new ArgumentNullException(nameof(store));
        this.consistency = consistency;
        worker = Task.Run(() => WorkAsync(stop.Token));
    }

    /// <summary>The run record of <paramref name="task"/> (absent: <c>StoredRun(null, 0)</c>).</summary>
    /// <exception cref="ConsulException">The batch it rode in failed.</exception>
    public Task<StoredRun> ReadAsync(TaskId task, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        var pending = new PendingRead(task, new TaskCompletionSource<StoredRun>(TaskCreationOptions.RunContinuationsAsynchronously));
        ObjectDisposedException.ThrowIf(!queue.Writer.TryWrite(pending), this);

        return pending.Answer.Task.WaitAsync(cancellationToken);
    }

    private async Task WorkAsync(CancellationToken cancellationToken)
    {
        try
        {
            while (await queue.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                // Let the rest of a burst arrive (every loop asks as it starts), then take up to one transaction's worth.
                await Task.Yield();
                var batch = new List<PendingRead>(ConsulTxn.MaxOperations);
                while (batch.Count < ConsulTxn.MaxOperations && queue.Reader.TryRead(out var pending))
                {
                    batch.Add(pending);
                }

                await slots.WaitAsync(cancellationToken).ConfigureAwait(false);
                _ = AnswerAsync(batch, cancellationToken);
            }
        }
        catch (OperationCanceledException)
        {
            // Disposed.
        }

        while (queue.Reader.TryRead(out var left))
        {
            left.Answer.TrySetCanceled(cancellationToken);
        }
    }

    private async Task AnswerAsync(List<PendingRead> batch, CancellationToken cancellationToken)
    {
        try
        {
            var layout = store.Layout;
            var keys = batch.ConvertAll(p => layout.RunKey(p.Task.Namespace, p.Task.Name));
            var result = (await store.Client.Txn.ReadAsync([.. keys.Distinct(StringComparer.Ordinal).Select(TxnOp.GetTree)], consistency, cancellationToken)
                .ConfigureAwait(false)).Value;
            if (!result.Committed)
            {
                throw new ConsulConflictException(keys[0], $"reading {keys.Count} run records failed: {string.Join("; ", result.Errors.Select(e => e.Reason))}");
            }

            var found = result.Results.GroupBy(p => p.Key, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
            for (var i = 0; i < batch.Count; i++)
            {
                batch[i].Answer.TrySetResult(found.TryGetValue(keys[i], out var pair) ? new StoredRun(RunStateStore.Decode(pair.Value), pair.ModifyIndex) : new StoredRun(null, 0));
            }
        }
        catch (Exception e)
        {
            foreach (var pending in batch)
            {
                pending.Answer.TrySetException(e);
            }
        }
        finally
        {
            slots.Release();
        }
    }

    /// <summary>Stops reading; reads still queued are cancelled.</summary>
    public async ValueTask DisposeAsync()
    {
        queue.Writer.TryComplete();
        await stop.CancelAsync().ConfigureAwait(false);
        await worker.ConfigureAwait(false);
        stop.Dispose();
    }

    private sealed record PendingRead(TaskId Task, TaskCompletionSource<StoredRun> Answer);
}
