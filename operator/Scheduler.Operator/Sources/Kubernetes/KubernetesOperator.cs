using Dtask.Consul;
using Dtask.Consul.Errors;
using Dtask.Core.Durations;
using Dtask.Core.Manifests;
using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Operator.Health;
using Dtask.Operator.Reconciliation;
using Dtask.Operator.Status;
using k8s;
using k8s.LeaderElection;
using k8s.LeaderElection.ResourceLock;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Dtask.Operator.Sources.Kubernetes;

/// <summary>
/// <c>dtask operator --source kubernetes</c>: replicas campaign for a <c>coordination.k8s.io</c> Lease with the
/// library's <see cref="LeaderElector"/>; the leader runs three loops until it stops leading — the
/// <see cref="ScheduledTaskReflector"/> (list and watch, names onto the queue), one worker taking names off the
/// <see cref="PendingReconciles{TKey}"/> for the <see cref="ScheduledTaskController"/>, and a <see cref="StatusWatcher"/>
/// that queues the objects whose runs changed in Consul so their status stays true. Losing the Lease stops all
/// three at once; the replica then campaigns again. On a clean stop the leader hands the Lease back so another
/// replica takes over without waiting for it to expire. The leader's Consul writes go through a <see cref="LeaseFence"/>
/// fed by the elector's renewals: they stop before the Lease can be taken over, even while this replica still
/// believes it leads.
/// </summary>
public sealed class KubernetesOperator : BackgroundService
{
    private readonly IKubernetes kubernetes;
    private readonly ConsulClient consul;
    private readonly KvLayout layout;
    private readonly KubernetesSourceOptions options;
    private readonly OperatorReadiness readiness;
    private readonly TimeProvider time;
    private readonly ILoggerFactory loggers;
    private readonly ILogger logger;
    private int leading;
    private long terms;
    private ScheduledTaskController? controller;
    private ScheduledTaskReflector? reflector;
    private readonly Health.OperatorInstruments? instruments;

    /// <summary>Creates the operator.</summary>
    public KubernetesOperator(IKubernetes kubernetes, ConsulClient consul, KvLayout layout, KubernetesSourceOptions options,
        OperatorReadiness? readiness = null, TimeProvider? time = null, ILoggerFactory? loggers = null)
    {
        this.kubernetes = kubernetes ?? throw new ArgumentNullException(nameof(kubernetes));
        this.consul = consul ?? throw new ArgumentNullException(nameof(consul));
        this.layout = layout ?? throw new ArgumentNullException(nameof(layout));
        this.options = options ?? throw new ArgumentNullException(nameof(options));
        this.readiness = readiness ?? new OperatorReadiness();
        this.time = time ?? TimeProvider.System;
        this.loggers = loggers ?? NullLoggerFactory.Instance;
        logger = this.loggers.CreateLogger<KubernetesOperator>();
    }

    /// <summary>True while this replica leads.</summary>
    public bool IsLeader => Volatile.Read(ref leading) == 1;

    /// <summary>Where reconciles are counted (<c>source="kubernetes"</c>); nowhere when null.</summary>
    public Health.OperatorInstruments? Instruments
    {
        get => instruments;
        init
        {
            instruments = value;
            value?.Observe("kubernetes", () => IsLeader);
        }
    }

    /// <summary>How many times this replica has started leading.</summary>
    public long Terms => Interlocked.Read(ref terms);

    /// <summary>The readiness this replica reports.</summary>
    public OperatorReadiness Readiness => readiness;

    /// <summary>Reconciles run in the current (or last) term.</summary>
    public long Reconciles => Volatile.Read(ref controller)?.Reconciles ?? 0;

    /// <summary>Status patches sent in the current (or last) term.</summary>
    public long StatusWrites => Volatile.Read(ref controller)?.StatusWrites ?? 0;

    /// <summary>Successful lists in the current (or last) term.</summary>
    public long Lists => Volatile.Read(ref reflector)?.Lists ?? 0;

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await WaitForConsulAsync(stoppingToken).ConfigureAwait(false);
        var lease = $"{options.LeaseNamespace}/{options.LeaseName}";
        while (!stoppingToken.IsCancellationRequested)
        {
            readiness.SetSourceReady(true);
            OperatorLog.Campaigning(logger, lease, options.Identity);
            var fence = new LeaseFence(consul, time, options.LeaseDuration, options.WriteTimeout(consul.Options.RequestTimeout));
            using var elector = new LeaderElector(new LeaderElectionConfig(
                fence.Recording(new LeaseLock(kubernetes, options.LeaseNamespace, options.LeaseName, options.Identity)))
            {
                LeaseDuration = options.LeaseDuration,
                RenewDeadline = options.RenewDeadline,
                RetryPeriod = options.RetryPeriod,
            });
            var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            elector.OnStartedLeading += () => started.TrySetResult();
            elector.OnNewLeader += leader => OperatorLog.NewLeader(logger, leader);
            elector.OnError += e => OperatorLog.ElectionError(logger, e.Message);
            using var term = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
            var election = elector.RunUntilLeadershipLostAsync(term.Token);
            if (await Task.WhenAny(started.Task, election).ConfigureAwait(false) == started.Task)
            {
                readiness.SetSourceReady(false);
                Volatile.Write(ref leading, 1);
                Interlocked.Increment(ref terms);
                OperatorLog.LeadingLease(logger, lease, options.Identity, options.Namespace is null ? " in every namespace" : $" in namespace {options.Namespace}");
                var work = LeadAsync(fence, term.Token);
                await Task.WhenAny(election, work).ConfigureAwait(false);
                await term.CancelAsync().ConfigureAwait(false);
                await QuietlyAsync(work).ConfigureAwait(false);
                await QuietlyAsync(election).ConfigureAwait(false);
                Volatile.Write(ref leading, 0);
                if (stoppingToken.IsCancellationRequested)
                {
                    await ReleaseLeaseAsync().ConfigureAwait(false);
                    return;
                }

                OperatorLog.StoppedLeading(logger, lease);
            }
            else
            {
                await QuietlyAsync(election).ConfigureAwait(false);
            }

            try
            {
                await Task.Delay(options.RetryPeriod, time, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>Runs the leader's loops until <paramref name="cancellationToken"/> fires or one of them fails.</summary>
    private async Task LeadAsync(LeaseFence fence, CancellationToken cancellationToken)
    {
        using var inner = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var queue = new PendingReconciles<TaskId>(time);
        var cache = new TaskObjectCache();
        var api = new ScheduledTaskApi(kubernetes, options.Namespace);
        var reconciler = new TaskReconciler(consul, layout, loggers.CreateLogger<TaskReconciler>(), time, fence) { Signer = options.Signer };
        var reader = new TaskObservationReader(consul, layout);
        var currentController = new ScheduledTaskController(api, cache, reconciler, reader, options, time, loggers.CreateLogger<ScheduledTaskController>());
        var currentReflector = new ScheduledTaskReflector(api, cache, queue, options,
            (names, ct) => ListedAsync(names, queue, ct), time, loggers.CreateLogger<ScheduledTaskReflector>());
        Volatile.Write(ref controller, currentController);
        Volatile.Write(ref reflector, currentReflector);

        Task[] loops =
        [
            currentReflector.RunAsync(inner.Token),
            WorkAsync(queue, currentController, inner.Token),
            QueueRunChangesAsync(queue, cache, inner.Token),
        ];
        var first = await Task.WhenAny(loops).ConfigureAwait(false);
        await inner.CancelAsync().ConfigureAwait(false);
        foreach (var loop in loops)
        {
            await QuietlyAsync(loop).ConfigureAwait(false);
        }

        if (first.IsFaulted && !cancellationToken.IsCancellationRequested)
        {
            OperatorLog.LeadingFailed(logger, first.Exception!.GetBaseException().Message);
        }
    }

    /// <summary>After a list: ready, and queue the tasks this source holds in Consul whose objects are gone.</summary>
    private async Task ListedAsync(IReadOnlyCollection<TaskId> listed, PendingReconciles<TaskId> queue, CancellationToken cancellationToken)
    {
        readiness.SetSourceReady(true);
        try
        {
            var present = listed.ToHashSet();
            var pairs = await consul.Kv.ListAsync(layout.TasksPrefix, cancellationToken: cancellationToken).ConfigureAwait(false);
            foreach (var stored in pairs.Value.Select(p => StoredTask.From(p, layout)).OfType<StoredTask>())
            {
                var name = new TaskId(stored.Namespace, stored.Name);
                if (stored.Envelope?.Owner == TaskOwner.Kubernetes && (options.Namespace is null || options.Namespace == stored.Namespace) && !present.Contains(name))
                {
                    queue.Add(name);
                }
            }
        }
        catch (ConsulException e)
        {
            OperatorLog.OrphanScanFailed(logger, e.Message);
        }
    }

    private async Task WorkAsync(PendingReconciles<TaskId> queue, ScheduledTaskController worker, CancellationToken cancellationToken)
    {
        var failures = new Dictionary<TaskId, Backoff>();
        while (true)
        {
            var name = await queue.TakeAsync(cancellationToken).ConfigureAwait(false);
            ControllerResult result;
            var started = time.GetTimestamp();
            var outcome = "error";
            try
            {
                result = await worker.ReconcileAsync(name, cancellationToken).ConfigureAwait(false);
                outcome = "ok";
                failures.Remove(name);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                throw;
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // Whatever went wrong, the name comes back later: the reconciler never loops by itself.
                if (!failures.TryGetValue(name, out var backoff))
                {
                    failures[name] = backoff = new Backoff(options.InitialBackoff, options.MaxBackoff, Random.Shared);
                }

                result = new ControllerResult(backoff.Next());
                OperatorLog.ReconcileThrew(logger, name, e.Message, result.RequeueAfter!.Value);
            }
            finally
            {
                queue.Done(name);
                instruments?.Reconciled("kubernetes", outcome, time.GetElapsedTime(started));
            }

            if (result.RequeueAfter is { } after)
            {
                queue.AddAfter(name, after);
            }
        }
    }

    /// <summary>Queues the objects whose specs or runs changed in Consul, so their status follows.</summary>
    private async Task QueueRunChangesAsync(PendingReconciles<TaskId> queue, TaskObjectCache cache, CancellationToken cancellationToken)
    {
        var watcher = new StatusWatcher(consul, layout, time, loggers.CreateLogger<StatusWatcher>());
        await foreach (var names in watcher.WatchAsync(cancellationToken).ConfigureAwait(false))
        {
            foreach (var name in names.Where(cache.Contains))
            {
                queue.Add(name);
            }
        }
    }

    private async Task WaitForConsulAsync(CancellationToken cancellationToken)
    {
        var backoff = new Backoff(options.InitialBackoff, options.MaxBackoff, Random.Shared);
        while (true)
        {
            try
            {
                var leader = await consul.Status.LeaderAsync(cancellationToken).ConfigureAwait(false);
                if (leader.Value.Length > 0)
                {
                    readiness.MarkConsulReached();
                    return;
                }

                var delay = backoff.Next();
                OperatorLog.ConsulWaiting(logger, "no Consul leader", delay);
                await Task.Delay(delay, time, cancellationToken).ConfigureAwait(false);
            }
            catch (ConsulException e)
            {
                var delay = backoff.Next();
                OperatorLog.ConsulWaiting(logger, e.Message, delay);
                await Task.Delay(delay, time, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Hands the Lease back on a clean stop (the library's elector does not): an empty holder with a one-second
    /// duration, written only while this replica still holds it, so the next replica takes over at once.
    /// </summary>
    private async Task ReleaseLeaseAsync()
    {
        using var timeout = new CancellationTokenSource(options.RenewDeadline, time);
        var leaseLock = new LeaseLock(kubernetes, options.LeaseNamespace, options.LeaseName, options.Identity);
        try
        {
            var record = await leaseLock.GetAsync(timeout.Token).ConfigureAwait(false);
            if (record.HolderIdentity != options.Identity)
            {
                return;
            }

            await leaseLock.UpdateAsync(new LeaderElectionRecord
            {
                HolderIdentity = "",
                LeaseDurationSeconds = 1,
                AcquireTime = record.AcquireTime,
                RenewTime = time.GetUtcNow().UtcDateTime,
                LeaderTransitions = record.LeaderTransitions,
            }, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is HttpRequestException or k8s.Autorest.HttpOperationException or OperationCanceledException)
        {
            OperatorLog.ElectionError(logger, "could not hand the Lease back: " + e.Message);
        }
    }

    private static async Task QuietlyAsync(Task task)
    {
        try
        {
            await task.ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or HttpRequestException or k8s.Autorest.HttpOperationException or ConsulException)
        {
            // Stopped, or already reported.
        }
        catch (Exception) when (task.IsFaulted)
        {
            // Reported by the caller.
        }
    }
}
