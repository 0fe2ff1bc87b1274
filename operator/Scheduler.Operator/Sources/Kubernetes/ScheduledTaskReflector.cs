using System.Net;
using Dtask.Core.Durations;
using Dtask.Core.Model;
using Dtask.Operator.Status;
using k8s;
using k8s.Autorest;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Dtask.Operator.Sources.Kubernetes;

/// <summary>
/// Keeps the <see cref="TaskObjectCache"/> in step with the API server and puts the names that need a reconcile on
/// the queue, in the manner of client-go's reflector: list, then watch from the list's resource version with
/// bookmarks. Events only enqueue names, and only when the spec (<c>metadata.generation</c>), the deletion mark or
/// the finalizers changed — not for status writes, the operator's own. A <c>410 Gone</c> (an <c>ERROR</c> event
/// reaching <c>onError</c>, or an HTTP 410 answer) means the resource version is too old: list again. A watch that
/// ends cleanly resumes from its last resource version; a failed one does too, after a capped exponential backoff
/// with jitter (a failed list likewise).
/// </summary>
public sealed class ScheduledTaskReflector
{
    private readonly ScheduledTaskApi api;
    private readonly TaskObjectCache cache;
    private readonly PendingReconciles<TaskId> queue;
    private readonly KubernetesSourceOptions options;
    private readonly TimeProvider time;
    private readonly ILogger logger;
    private readonly Func<IReadOnlyCollection<TaskId>, CancellationToken, Task> listed;
    private long lists;
    private long watches;

    /// <summary>Creates the reflector.</summary>
    /// <param name="api">The API calls.</param>
    /// <param name="cache">The cache it fills.</param>
    /// <param name="queue">Where names that need a reconcile go.</param>
    /// <param name="options">Periods and backoff.</param>
    /// <param name="listed">Called after each successful list with the listed names.</param>
    /// <param name="time">The clock of the backoff.</param>
    /// <param name="logger">The log.</param>
    public ScheduledTaskReflector(ScheduledTaskApi api, TaskObjectCache cache, PendingReconciles<TaskId> queue, KubernetesSourceOptions options,
        Func<IReadOnlyCollection<TaskId>, CancellationToken, Task> listed, TimeProvider? time = null, ILogger<ScheduledTaskReflector>? logger = null)
    {
        this.api = api ?? throw new ArgumentNullException(nameof(api));
        this.cache = cache ?? throw new ArgumentNullException(nameof(cache));
        this.queue = queue ?? throw new ArgumentNullException(nameof(queue));
        this.options = options ?? throw new ArgumentNullException(nameof(options));
        this.listed = listed ?? throw new ArgumentNullException(nameof(listed));
        this.time = time ?? TimeProvider.System;
        this.logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    /// <summary>How many lists succeeded.</summary>
    public long Lists => Interlocked.Read(ref lists);

    /// <summary>How many watches were opened.</summary>
    public long Watches => Interlocked.Read(ref watches);

    /// <summary>Lists and watches until cancelled.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var backoff = new Backoff(options.InitialBackoff, options.MaxBackoff, Random.Shared);
        var scope = api.Namespace is null ? " in every namespace" : $" in namespace {api.Namespace}";
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            string? version;
            try
            {
                var (items, listVersion) = await api.ListAsync(cancellationToken).ConfigureAwait(false);
                version = listVersion;
                var changed = cache.Replace(items);
                foreach (var name in changed)
                {
                    queue.Add(name);
                }

                Interlocked.Increment(ref lists);
                OperatorLog.Listed(logger, items.Count, scope, version, changed.Count);
                await listed([.. items.Select(i => i.Name)], cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is HttpOperationException or HttpRequestException or KubernetesException or IOException)
            {
                await WaitAsync(backoff, "Listing ScheduledTasks", e, cancellationToken).ConfigureAwait(false);
                continue;
            }

            // Watch from the list's version until the version expires; then list again.
            while (true)
            {
                var outcome = await WatchOnceAsync(version, cancellationToken).ConfigureAwait(false);
                if (outcome.Version is { } seen)
                {
                    version = seen;
                }

                if (outcome.Delivered)
                {
                    backoff.Reset();
                }

                if (outcome.Expired)
                {
                    OperatorLog.WatchExpired(logger);
                    break;
                }

                if (outcome.Failure is { } failure)
                {
                    await WaitAsync(backoff, "Watching ScheduledTasks", failure, cancellationToken).ConfigureAwait(false);
                }
                else if (!outcome.Delivered)
                {
                    // Ended cleanly without a single event: resume, but never in a tight loop.
                    await Task.Delay(options.InitialBackoff, time, cancellationToken).ConfigureAwait(false);
                }
            }
        }
    }

    private async Task<WatchOutcome> WatchOnceAsync(string? version, CancellationToken cancellationToken)
    {
        Exception? reported = null;
        var delivered = false;
        Interlocked.Increment(ref watches);
        try
        {
            await foreach (var change in api.WatchAsync(version, options.WatchTimeout, e => reported ??= e, cancellationToken).ConfigureAwait(false))
            {
                delivered = true;
                version = change.ResourceVersion ?? version;
                Apply(change);
            }
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Gone)
        {
            return new WatchOutcome(version, delivered, Expired: true, null);
        }
        catch (HttpRequestException e) when (e.InnerException is EndOfStreamException)
        {
            // The server ended the watch (its timeout) before any event: resume from the same version.
            return new WatchOutcome(version, delivered, Expired: false, null);
        }
        catch (Exception e) when (e is HttpOperationException or HttpRequestException or IOException or KubernetesException)
        {
            return new WatchOutcome(version, delivered, Expired: false, e);
        }

        return reported switch
        {
            KubernetesException { Status.Code: 410 } => new WatchOutcome(version, delivered, Expired: true, null),
            HttpOperationException { Response.StatusCode: HttpStatusCode.Gone } => new WatchOutcome(version, delivered, Expired: true, null),
            HttpRequestException { InnerException: EndOfStreamException } => new WatchOutcome(version, delivered, Expired: false, null),
            null => new WatchOutcome(version, delivered, Expired: false, null),
            _ => new WatchOutcome(version, delivered, Expired: false, reported),
        };
    }

    private void Apply(TaskWatchEvent change)
    {
        switch (change.Type)
        {
            case WatchEventType.Added or WatchEventType.Modified when change.Item is { } item:
                var queued = cache.Put(item);
                if (queued)
                {
                    queue.Add(item.Name);
                }

                OperatorLog.WatchEvent(logger, change.Type, item.Name, item.Generation, queued);
                break;
            case WatchEventType.Deleted when change.Item is { } item:
                cache.Remove(item.Name);
                queue.Add(item.Name);
                break;
            default:
                // Bookmarks only move the resource version on.
                break;
        }
    }

    private async Task WaitAsync(Backoff backoff, string what, Exception error, CancellationToken cancellationToken)
    {
        var delay = backoff.Next();
        var reason = error is HttpOperationException http ? $"{(int)http.Response.StatusCode} {http.Response.ReasonPhrase}" : error.Message;
        OperatorLog.ListWatchFailed(logger, what, reason, delay);
        await Task.Delay(delay, time, cancellationToken).ConfigureAwait(false);
    }

    private sealed record WatchOutcome(string? Version, bool Delivered, bool Expired, Exception? Failure);
}
