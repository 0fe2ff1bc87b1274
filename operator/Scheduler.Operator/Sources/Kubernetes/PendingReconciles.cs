using System.Threading.Channels;

namespace Dtask.Operator.Sources.Kubernetes;

/// <summary>
/// The work queue between watch events and the reconciler, in the manner of controller-runtime's: it holds names,
/// not events; a name queued twice before it is taken is reconciled once; a name queued while it is being
/// reconciled is queued again when that reconcile is <see cref="Done"/>, so one name is never reconciled twice at
/// once and no change is lost. <see cref="AddAfter"/> requeues a name later (resync, backoff) on the injected clock.
/// </summary>
/// <typeparam name="TKey">The key type (a task's namespace and name).</typeparam>
public sealed class PendingReconciles<TKey> : IDisposable
    where TKey : notnull
{
    private readonly Channel<TKey> ready = Channel.CreateUnbounded<TKey>(new UnboundedChannelOptions { SingleReader = true });
    private readonly HashSet<TKey> dirty = [];
    private readonly HashSet<TKey> processing = [];
    private readonly Dictionary<TKey, (DateTimeOffset Due, ITimer Timer)> delayed = [];
    private readonly Lock gate = new();
    private readonly TimeProvider time;
    private bool disposed;

    /// <summary>Creates an empty queue whose delays run on <paramref name="time"/>.</summary>
    public PendingReconciles(TimeProvider? time = null) => this.time = time ?? TimeProvider.System;

    /// <summary>How many names wait to be taken.</summary>
    public int Count
    {
        get
        {
            lock (gate)
            {
                return dirty.Count - dirty.Count(processing.Contains);
            }
        }
    }

    /// <summary>Queues <paramref name="key"/> unless it is already waiting.</summary>
    public void Add(TKey key)
    {
        lock (gate)
        {
            if (disposed || !dirty.Add(key))
            {
                return;
            }

            if (!processing.Contains(key))
            {
                ready.Writer.TryWrite(key);
            }
        }
    }

    /// <summary>Queues <paramref name="key"/> after <paramref name="delay"/>; an earlier pending delay of the same key wins.</summary>
    public void AddAfter(TKey key, TimeSpan delay)
    {
        if (delay <= TimeSpan.Zero)
        {
            Add(key);
            return;
        }

        lock (gate)
        {
            if (disposed)
            {
                return;
            }

            var due = time.GetUtcNow() + delay;
            if (delayed.TryGetValue(key, out var pending))
            {
                if (pending.Due <= due)
                {
                    return;
                }

                pending.Timer.Dispose();
            }

            var timer = time.CreateTimer(_ => Fire(key), null, delay, Timeout.InfiniteTimeSpan);
            delayed[key] = (due, timer);
        }
    }

    /// <summary>Waits for the next name; the caller must call <see cref="Done"/> with it when its reconcile ends.</summary>
    public async Task<TKey> TakeAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var key = await ready.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            lock (gate)
            {
                if (dirty.Remove(key))
                {
                    processing.Add(key);
                    return key;
                }
            }
        }
    }

    /// <summary>Ends the reconcile of <paramref name="key"/>; if it was queued meanwhile, it is queued again now.</summary>
    public void Done(TKey key)
    {
        lock (gate)
        {
            processing.Remove(key);
            if (!disposed && dirty.Contains(key))
            {
                ready.Writer.TryWrite(key);
            }
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        lock (gate)
        {
            disposed = true;
            foreach (var (_, timer) in delayed.Values)
            {
                timer.Dispose();
            }

            delayed.Clear();
        }

        ready.Writer.TryComplete();
    }

    private void Fire(TKey key)
    {
        lock (gate)
        {
            delayed.Remove(key);
        }

        Add(key);
    }
}
