using System.Threading.Channels;
using Dtask.Consul.Errors;
using Dtask.Consul.Kv;

namespace Dtask.Consul.Txn;

/// <summary>
/// Sends many small transactions that are due at the same moment as few requests: transactions asked for together (a
/// herd of claims due at the same instant) ride in one <c>PUT /v1/txn</c> of up to <see cref="ConsulTxn.MaxOperations"/>
/// operations, at most <see cref="ParallelBatches"/> requests in flight. Each transaction keeps its own all-or-nothing
/// meaning: when the combined request rolls back, the transactions whose operations failed get their own errors (indexed
/// within their own operations), and the others, of which nothing was applied, are sent again without them. A lone
/// transaction is sent at once, as it is.
/// </summary>
/// <remarks>
/// Two transactions that touch the same key never ride together (one's result would depend on the other's). A failure
/// of the request itself (unreachable agent, timeout, 5xx) is the answer of every transaction in it: its outcome is
/// unknown for all of them alike, and each caller reads back what is stored. A permission refusal applies nothing, so the
/// transactions of a refused request are sent again one by one and only the refused one fails.
/// </remarks>
public sealed class TxnBatcher : IAsyncDisposable
{
    /// <summary>How many requests are in flight at once.</summary>
    public const int ParallelBatches = 4;

    private readonly ConsulTxn txn;
    private readonly Channel<Pending> queue = Channel.CreateUnbounded<Pending>(new UnboundedChannelOptions { SingleReader = true });
    private readonly SemaphoreSlim slots = new(ParallelBatches);
    private readonly CancellationTokenSource stop = new();
    private readonly Task worker;
    private long requests;

    /// <summary>Starts the batcher on <paramref name="txn"/>.</summary>
    public TxnBatcher(ConsulTxn txn)
    {
        this.txn = txn ?? throw new ArgumentNullException(nameof(txn));
        worker = Task.Run(() => WorkAsync(stop.Token));
    }

    /// <summary>How many requests were sent so far.</summary>
    public long Requests => Interlocked.Read(ref requests);

    /// <summary>Runs <paramref name="operations"/> as one atomic transaction, possibly in one request with others.</summary>
    /// <returns>Its outcome: its own results (the keys it returned) or its own errors, indexed within <paramref name="operations"/>.</returns>
    /// <exception cref="ConsulException">The request it rode in failed (its outcome is unknown), or a key was refused.</exception>
    public Task<TxnResult> ExecuteAsync(IReadOnlyList<TxnOp> operations, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(operations);
        if (operations.Count == 0 || operations.Count > ConsulTxn.MaxOperations)
        {
            throw new ArgumentException($"a transaction has 1 to {ConsulTxn.MaxOperations} operations, not {operations.Count}", nameof(operations));
        }

        var pending = new Pending([.. operations], new TaskCompletionSource<TxnResult>(TaskCreationOptions.RunContinuationsAsynchronously), cancellationToken);
        ObjectDisposedException.ThrowIf(!queue.Writer.TryWrite(pending), this);
        return pending.Answer.Task.WaitAsync(cancellationToken);
    }

    private async Task WorkAsync(CancellationToken cancellationToken)
    {
        var carried = new Queue<Pending>();
        try
        {
            while (carried.Count > 0 || await queue.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                // Let the rest of a burst arrive (every slot due at this instant asks at once), then take one request's worth.
                await Task.Yield();
                var batch = new List<Pending>();
                var keys = new HashSet<string>(StringComparer.Ordinal);
                var operations = 0;
                var deferred = new List<Pending>();
                while (carried.TryDequeue(out var next) || queue.Reader.TryRead(out next))
                {
                    if (next.Token.IsCancellationRequested)
                    {
                        next.Answer.TrySetCanceled(next.Token);
                        continue;
                    }

                    if (operations + next.Operations.Count > ConsulTxn.MaxOperations)
                    {
                        deferred.Add(next);
                        break;
                    }

                    if (next.Operations.Any(op => keys.Contains(op.Key)))
                    {
                        deferred.Add(next); // Touches a key of this request: next time.
                        continue;
                    }

                    batch.Add(next);
                    operations += next.Operations.Count;
                    keys.UnionWith(next.Operations.Select(op => op.Key));
                }

                foreach (var later in deferred)
                {
                    carried.Enqueue(later);
                }

                if (batch.Count == 0)
                {
                    continue;
                }

                await slots.WaitAsync(cancellationToken).ConfigureAwait(false);
                _ = SendAsync(batch, cancellationToken);
            }
        }
        catch (OperationCanceledException)
        {
            // Disposed.
        }

        foreach (var left in carried)
        {
            left.Answer.TrySetCanceled(cancellationToken);
        }

        while (queue.Reader.TryRead(out var left))
        {
            left.Answer.TrySetCanceled(cancellationToken);
        }
    }

    private async Task SendAsync(List<Pending> batch, CancellationToken cancellationToken)
    {
        try
        {
            while (batch.Count > 0)
            {
                batch = await SendOnceAsync(batch, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            slots.Release();
        }
    }

    /// <summary>Sends <paramref name="batch"/> as one request and answers what it can; returns those to send again.</summary>
    private async Task<List<Pending>> SendOnceAsync(List<Pending> batch, CancellationToken cancellationToken)
    {
        TxnResult result;
        try
        {
            Interlocked.Increment(ref requests);
            result = (await txn.ExecuteAsync([.. batch.SelectMany(p => p.Operations)], TxnAtomicity.RequireAtomic, cancellationToken).ConfigureAwait(false)).Value;
        }
        catch (ConsulPermissionDeniedException) when (batch.Count > 1)
        {
            // Nothing was applied: one by one, so that only the refused transaction fails.
            return await OneByOneAsync(batch, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            foreach (var pending in batch)
            {
                pending.Answer.TrySetException(e);
            }

            return [];
        }

        if (batch.Count == 1)
        {
            batch[0].Answer.TrySetResult(result);
            return [];
        }

        if (result.Committed)
        {
            foreach (var pending in batch)
            {
                var own = pending.Keys;
                pending.Answer.TrySetResult(new TxnResult(true, [.. result.Results.Where(r => own.Contains(r.Key))], [], 1));
            }

            return [];
        }

        // Rolled back: nothing was applied. The transactions with errors get them; the others go again without them.
        var again = new List<Pending>();
        var start = 0;
        var matched = false;
        foreach (var pending in batch)
        {
            var end = start + pending.Operations.Count;
            var own = result.Errors.Where(e => e.OperationIndex >= start && e.OperationIndex < end)
                .Select(e => e with { OperationIndex = e.OperationIndex - start }).ToList();
            if (own.Count > 0)
            {
                matched = true;
                pending.Answer.TrySetResult(new TxnResult(false, [], own, 0));
            }
            else
            {
                again.Add(pending);
            }

            start = end;
        }

        if (!matched)
        {
            // Errors that name no operation: one by one, so that each gets its own answer.
            return await OneByOneAsync(batch, cancellationToken).ConfigureAwait(false);
        }

        return again;
    }

    private async Task<List<Pending>> OneByOneAsync(List<Pending> batch, CancellationToken cancellationToken)
    {
        foreach (var pending in batch)
        {
            await SendOnceAsync([pending], cancellationToken).ConfigureAwait(false);
        }

        return [];
    }

    /// <summary>Stops sending; transactions still queued are cancelled (those in flight finish).</summary>
    public async ValueTask DisposeAsync()
    {
        queue.Writer.TryComplete();
        await stop.CancelAsync().ConfigureAwait(false);
        await worker.ConfigureAwait(false);
        stop.Dispose();
    }

    private sealed record Pending(IReadOnlyList<TxnOp> Operations, TaskCompletionSource<TxnResult> Answer, CancellationToken Token)
    {
        public HashSet<string> Keys { get; } = new(Operations.Select(op => op.Key), StringComparer.Ordinal);
    }
}
