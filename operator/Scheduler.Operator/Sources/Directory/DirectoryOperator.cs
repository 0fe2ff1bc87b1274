using System.Text.Json;
using Dtask.Consul;
using Dtask.Consul.Errors;
using Dtask.Consul.Kv;
using Dtask.Consul.Locking;
using Dtask.Core.Model;
using Dtask.Operator.Health;
using Dtask.Core.State;
using Dtask.Operator.Reconciliation;
using Dtask.Operator.Status;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Dtask.Operator.Sources.Directory;

/// <summary>
/// <c>dtask operator --source dir:PATH</c>: several replicas may run; the one holding the Consul lock
/// (<see cref="DirectorySourceOptions.LockKey"/>) reconciles the directory — fully when it takes the lock, then
/// after each burst of file changes (debounced) and at every resync period — and logs the status changes of the
/// tasks. When the lock is lost it stops at once and waits to take it again. Every write carries a
/// <c>check-session</c> of the lock (<see cref="ConsulLockFence"/>): a replica that was paused past the lock's TTL and
/// wakes up still believing it leads has its writes refused by Consul, logs that it lost leadership, and campaigns again.
/// </summary>
public sealed class DirectoryOperator : BackgroundService
{
    private readonly ConsulClient client;
    private readonly KvLayout layout;
    private readonly DirectorySource source;
    private readonly TimeProvider time;
    private readonly ILogger logger;
    private readonly ILoggerFactory loggers;
    private readonly string lockKey;
    private readonly string holder;
    private readonly Dictionary<TaskId, string> loggedStatus = [];
    private readonly Lock statusGate = new();
    private readonly OperatorReadiness readiness;
    private readonly ConsulLockFence fence;
    private IReadOnlyDictionary<string, TaskOutcome> invalid = new Dictionary<string, TaskOutcome>();
    private int leading;
    private long reconciliations;
    private long leadershipLosses;
    private ReconcileResult? lastResult;
    private readonly Health.OperatorInstruments? instruments;

    /// <summary>Creates the operator of one directory.</summary>
    public DirectoryOperator(ConsulClient client, KvLayout layout, DirectorySourceOptions options, TimeProvider? time = null, ILoggerFactory? loggers = null,
        OperatorReadiness? readiness = null)
    {
        this.readiness = readiness ?? new OperatorReadiness();
        this.client = client ?? throw new ArgumentNullException(nameof(client));
        this.layout = layout ?? throw new ArgumentNullException(nameof(layout));
        ArgumentNullException.ThrowIfNull(options);
        this.time = time ?? TimeProvider.System;
        this.loggers = loggers ?? NullLoggerFactory.Instance;
        logger = this.loggers.CreateLogger<DirectoryOperator>();
        lockKey = options.LockKey ?? DirectorySourceOptions.DefaultLockKey(layout);
        fence = new ConsulLockFence(client, lockKey);
        source = new DirectorySource(options, new TaskReconciler(client, layout, this.loggers.CreateLogger<TaskReconciler>(), this.time, fence) { Signer = options.Signer },
            this.loggers.CreateLogger<DirectorySource>());
        holder = $"{Environment.MachineName}/{Environment.ProcessId}/{Guid.NewGuid():N}";
    }

    /// <summary>The directory's source.</summary>
    public DirectorySource Source => source;

    /// <summary>A unique name of this replica (host, process, random part), written as the lock's value.</summary>
    public string Holder => holder;

    /// <summary>True while this replica holds the lock.</summary>
    public bool IsLeader => Volatile.Read(ref leading) == 1;

    /// <summary>How many reconciles this replica has run.</summary>
    public long Reconciliations => Interlocked.Read(ref reconciliations);

    /// <summary>The last reconcile's result.</summary>
    public ReconcileResult? LastResult => Volatile.Read(ref lastResult);

    /// <summary>How many times a write of this replica was refused because it no longer led.</summary>
    public long LeadershipLosses => Interlocked.Read(ref leadershipLosses);

    /// <summary>The readiness this replica reports: Consul reached, and the first reconcile done while leading (or waiting as a non-leader).</summary>
    public OperatorReadiness Readiness => readiness;

    /// <summary>Raised after each reconcile.</summary>
    public event EventHandler<ReconcileResult>? Reconciled;

    /// <summary>Where reconciles are counted (<c>source="directory"</c>); nowhere when null.</summary>
    public Health.OperatorInstruments? Instruments
    {
        get => instruments;
        init
        {
            instruments = value;
            value?.Observe("directory", () => IsLeader, () => Volatile.Read(ref invalid).Count);
        }
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var options = source.Options;
        var lockOptions = new LockOptions(lockKey)
        {
            Value = KvValue.Utf8(JsonSerializer.Serialize(new Dictionary<string, string> { ["holder"] = holder, ["directory"] = options.FullPath })),
            SessionName = "dtask operator " + source.Owner,
            SessionTtl = options.SessionTtl,
            SessionNode = options.SessionNode,
            LockDelay = options.LockDelay,
        };
        while (!stoppingToken.IsCancellationRequested)
        {
            ConsulLock held;
            try
            {
                await client.Status.LeaderAsync(stoppingToken).ConfigureAwait(false);
                readiness.MarkConsulReached();
                readiness.SetSourceReady(true);
                OperatorLog.WaitingForLock(logger, lockKey);
                held = await ConsulLock.AcquireAsync(client, lockOptions, time, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (ConsulException e)
            {
                OperatorLog.LockFailed(logger, lockKey, e.Message);
                try
                {
                    await DelayAsync(options.RetryDelay, stoppingToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                continue;
            }

            await using (held.ConfigureAwait(false))
            {
                using var leader = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, held.LostToken);
                readiness.SetSourceReady(false);
                fence.Hold(held.SessionId);
                Volatile.Write(ref leading, 1);
                OperatorLog.Leading(logger, lockKey, held.SessionId, options.FullPath);
                try
                {
                    await LeadAsync(leader.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (leader.IsCancellationRequested)
                {
                    // Lost the lock or stopping.
                }
                catch (LeadershipLostException e)
                {
                    Interlocked.Increment(ref leadershipLosses);
                    OperatorLog.LostLeadership(logger, lockKey, e.Reason);
                }
                finally
                {
                    fence.Release();
                    Volatile.Write(ref leading, 0);
                }

                if (held.IsLost && !stoppingToken.IsCancellationRequested)
                {
                    OperatorLog.LostLock(logger, lockKey, held.LostReason);
                }
            }

            if (!stoppingToken.IsCancellationRequested)
            {
                // Step back for a moment after losing the lock, so a replica already waiting takes it over
                // instead of this one taking it straight back (leadership should not flap).
                try
                {
                    await DelayAsync(options.RetryDelay, stoppingToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    private async Task LeadAsync(CancellationToken cancellationToken)
    {
        var options = source.Options;
        source.StartTerm();
        using var watcher = new ManifestDirectoryWatcher(options.FullPath);
        watcher.WatchFailed += (_, reason) => OperatorLog.FileWatchFailed(logger, options.FullPath, reason);
        using var term = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var status = options.LogStatus ? LogStatusAsync(term.Token) : Task.CompletedTask;
        try
        {
            var reason = "lock acquired";
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                await ReconcileAsync(reason, cancellationToken).ConfigureAwait(false);
                if (!watcher.IsWatching)
                {
                    watcher.Restart();
                }

                reason = await NextTriggerAsync(watcher, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            await term.CancelAsync().ConfigureAwait(false);
            try
            {
                await status.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // Stopped with the leadership.
            }
        }
    }

    private async Task ReconcileAsync(string reason, CancellationToken cancellationToken)
    {
        var started = time.GetTimestamp();
        var outcome = "error";
        try
        {
            var reconciled = await source.ReconcileAsync(reason, cancellationToken).ConfigureAwait(false);
            outcome = reconciled is { HasInvalid: true } ? "invalid" : "ok";
            readiness.SetSourceReady(true);
            if (reconciled is { } result)
            {
                Volatile.Write(ref invalid, result.With(TaskAction.Invalid).Where(o => o.Namespace != "?").GroupBy(o => o.Key)
                    .ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal));
                Volatile.Write(ref lastResult, result);
                Interlocked.Increment(ref reconciliations);
                Reconciled?.Invoke(this, result);
            }
        }
        catch (ConsulException e)
        {
            // The next trigger (a file change or the resync) tries again.
            OperatorLog.ReconcileFailed(logger, source.Options.FullPath, e.Message);
        }
#pragma warning disable CA1031 // Nothing a file holds may stop the host: the next trigger tries again.
        catch (Exception e) when (e is not LeadershipLostException && !(e is OperationCanceledException && cancellationToken.IsCancellationRequested))
#pragma warning restore CA1031
        {
            OperatorLog.ReconcileFailed(logger, source.Options.FullPath, $"{e.GetType().Name}: {e.Message}");
        }
        finally
        {
            instruments?.Reconciled("directory", outcome, time.GetElapsedTime(started));
        }
    }

    /// <summary>Waits for a burst of file changes to end, or for the resync period; returns why.</summary>
    private async Task<string> NextTriggerAsync(ManifestDirectoryWatcher watcher, CancellationToken cancellationToken)
    {
        var options = source.Options;
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var resync = Task.Delay(options.Resync, time, wait.Token);
        var change = watcher.Signals.WaitToReadAsync(wait.Token).AsTask();
        var first = await Task.WhenAny(resync, change).ConfigureAwait(false);
        await wait.CancelAsync().ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
        if (first == resync || !watcher.Signals.TryRead(out var reason))
        {
            return "resync";
        }

        // Debounce: wait until the files have been quiet for the debounce period.
        while (true)
        {
            await DelayAsync(options.Debounce, cancellationToken).ConfigureAwait(false);
            if (!watcher.Signals.TryRead(out var later))
            {
                return reason;
            }

            reason = later;
        }
    }

    private async Task LogStatusAsync(CancellationToken cancellationToken)
    {
        var watcher = new StatusWatcher(client, layout, time, loggers.CreateLogger<StatusWatcher>());
        var reader = new TaskObservationReader(client, layout);
        await foreach (var names in watcher.WatchAsync(cancellationToken).ConfigureAwait(false))
        {
            foreach (var name in names)
            {
                try
                {
                    var observation = await reader.ReadAsync(name.Namespace, name.Name, cancellationToken).ConfigureAwait(false);
                    if (observation.Envelope is { } envelope && envelope.Owner != source.Owner)
                    {
                        continue;
                    }

                    var errors = Volatile.Read(ref invalid).GetValueOrDefault(name.ToString())?.Errors;
                    var line = StatusLine(observation.StatusAt(time.GetUtcNow(), errors: errors), observation.Envelope is null && errors is null);
                    lock (statusGate)
                    {
                        if (loggedStatus.TryGetValue(name, out var before) && before == line)
                        {
                            continue;
                        }

                        loggedStatus[name] = line;
                    }

                    OperatorLog.StatusChanged(logger, name, line);
                }
                catch (ConsulException e)
                {
                    OperatorLog.StatusReadFailed(logger, name, e.Message);
                }
            }
        }
    }

    private static string StatusLine(Core.Model.ScheduledTaskStatus status, bool gone)
    {
        if (gone)
        {
            return "not in Consul";
        }

        var conditions = string.Join(", ", (status.Conditions ?? []).Select(c => $"{c.Type}={c.Status}{(c.Status == "True" ? "" : $" ({c.Reason}: {c.Message})")}"));
        var run = status.LastRun is { } last ? $"; last run {last.Slot:u} on {last.Node}: {last.Result}{(last.ExitCode is { } code ? $" (exit {code})" : "")}" : "";
        var next = status.NextScheduleTime is { } at ? $"; next {at:u}" : "";
        return conditions + run + next;
    }

    private async Task DelayAsync(TimeSpan delay, CancellationToken cancellationToken)
    {
        if (delay > TimeSpan.Zero)
        {
            await Task.Delay(delay, time, cancellationToken).ConfigureAwait(false);
        }
    }
}
