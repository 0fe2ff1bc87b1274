using System.Collections.Concurrent;
using Dtask.Consul.Errors;
using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Executor.Claims;
using Dtask.Executor.Ledger;
using Dtask.Executor.Processes;
using Microsoft.Extensions.Hosting;
using Serilog;

namespace Dtask.Executor.Daemon;

/// <summary>
/// Runs one <see cref="TaskLoop"/> per valid task (started, updated and stopped as <c>tasks/</c> changes) and acts on
/// control requests: <c>trigger/&lt;id&gt;</c> (contend for the manual run, also when the trigger came before the task)
/// and <c>stop/&lt;runId&gt;</c> (stop this executor's child of the named run: <c>Replace</c>). On shutdown it stops claiming, lets running children finish for the grace period, then stops
/// them (their runs are recorded with reason <c>stopped: shutdown</c>) and waits for their records to be written.
/// </summary>
public sealed class FiringService : BackgroundService
{
    private readonly ClusterView view;
    private readonly SlotContender contender;
    private readonly ITaskLedger ledger;
    private readonly KvLayout layout;
    private readonly RunningRuns runs;
    private readonly ExecutorOptions options;
    private readonly TimeProvider time;
    private readonly ILogger logger;
    private readonly Lock gate = new();
    private readonly Dictionary<TaskId, TaskLoop> loops = [];
    private readonly HashSet<string> handledControls = new(StringComparer.Ordinal); // "key@CreateIndex" of the requests routed
    private readonly ConcurrentDictionary<Task, byte> inFlight = new();
    private readonly CancellationTokenSource claiming = new();

    /// <summary>Creates the service.</summary>
    public FiringService(ClusterView view, SlotContender contender, ITaskLedger ledger, KvLayout layout, RunningRuns runs, ExecutorOptions options, TimeProvider time, ILogger logger)
    {
        this.ledger = ledger ?? throw new ArgumentNullException(nameof(ledger));
        this.view = view;
        this.contender = contender;
        this.runs = runs;
        this.options = options;
        this.time = time;
        this.logger = logger;
        this.layout = layout;
    }

    /// <summary>Starts a loop for every task known now, and follows changes.</summary>
    public override Task StartAsync(CancellationToken cancellationToken)
    {
        FiringWarmup.Run(layout, options);
        view.TasksChanged += SyncTasks;
        view.ControlsChanged += SyncControls;
        SyncTasks();
        SyncControls();
        return base.StartAsync(cancellationToken);
    }

    /// <inheritdoc />
    protected override Task ExecuteAsync(CancellationToken stoppingToken) => Task.CompletedTask;

    /// <summary>Stops claiming, drains running children within the grace period, then stops the rest.</summary>
    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        view.TasksChanged -= SyncTasks;
        view.ControlsChanged -= SyncControls;
        await claiming.CancelAsync().ConfigureAwait(false);
        List<TaskLoop> all;
        lock (gate)
        {
            all = [.. loops.Values];
            loops.Clear();
        }

        foreach (var loop in all)
        {
            await loop.DisposeAsync().ConfigureAwait(false);
        }

        var running = runs.Count;
        if (running > 0)
        {
            logger.Information("shutting down: no new claims; waiting up to {Grace} s for {Count} running children", options.ShutdownGrace.TotalSeconds, running);
        }

        var drained = Task.WhenAll(inFlight.Keys);
        if (await Task.WhenAny(drained, Task.Delay(options.ShutdownGrace, time, CancellationToken.None)).ConfigureAwait(false) != drained)
        {
            logger.Warning("shutting down: stopping {Count} children still running after {Grace} s", runs.Count, options.ShutdownGrace.TotalSeconds);
            runs.StopAll(StopReason.Shutdown());
            await drained.ConfigureAwait(false);
        }

        await base.StopAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public override void Dispose()
    {
        claiming.Dispose();
        base.Dispose();
    }

    private void Track(Task fire)
    {
        inFlight[fire] = 0;
        _ = fire.ContinueWith(t => inFlight.TryRemove(t, out _), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    private void SyncTasks()
    {
        if (claiming.IsCancellationRequested)
        {
            return;
        }

        var tasks = view.Tasks;
        List<TaskLoop> removed = [];
        lock (gate)
        {
            foreach (var (id, definition) in tasks)
            {
                if (loops.TryGetValue(id, out var loop))
                {
                    loop.Update(definition);
                }
                else
                {
                    loops[id] = new TaskLoop(definition, contender, ledger, options, time, logger, Track, claiming.Token);
                    LogScheduled(definition);
                }
            }

            foreach (var id in loops.Keys.Where(id => !tasks.ContainsKey(id)).ToList())
            {
                removed.Add(loops[id]);
                loops.Remove(id);
                logger.Information("task {Namespace:l}/{Task:l}: removed; no more slots fire (a running child finishes)", id.Namespace, id.Name);
            }
        }

        foreach (var loop in removed)
        {
            Track(loop.DisposeAsync().AsTask());
        }

        SyncControls(); // Triggers that came before their task are routed now.
    }

    /// <summary>
    /// Routes the control requests not yet acted on: a <c>stop/&lt;runId&gt;</c> stops that run when it runs here (and
    /// removes the request); a <c>trigger/&lt;id&gt;</c> goes to its task's loop. A trigger whose task is not known here
    /// yet (or does not select this node) stays pending, and is routed when the task appears or changes: it is marked
    /// handled only once routed.
    /// </summary>
    private void SyncControls()
    {
        if (claiming.IsCancellationRequested)
        {
            return;
        }

        var controls = view.Controls;
        List<(StoredControl Control, TaskLoop? Loop)> route = [];
        lock (gate)
        {
            handledControls.RemoveWhere(h => !controls.ContainsKey(h[..h.LastIndexOf('@')]));
            foreach (var control in controls.Values)
            {
                var handle = $"{control.Key}@{control.CreateIndex}";
                if (handledControls.Contains(handle))
                {
                    continue;
                }

                TaskLoop? loop = null;
                if (control.Action == ControlAction.Trigger && (!loops.TryGetValue(control.Task, out loop) || !loop.Definition.Selects(options.Labels)))
                {
                    continue; // Not routable yet: kept pending, routed when the task appears here.
                }

                handledControls.Add(handle);
                route.Add((control, loop));
            }
        }

        foreach (var (control, loop) in route)
        {
            if (control.Action == ControlAction.Stop)
            {
                if (runs.TryStop(control.Task, control.Id, StopReason.Replaced))
                {
                    logger.Information("task {Namespace:l}/{Task:l}: run {RunId:l} stopped: replaced (asked by {By:l})", control.Task.Namespace, control.Task.Name, control.Id,
                        control.Request?.RequestedBy ?? "unknown");
                    Track(DeleteAsync(control));
                }
            }
            else
            {
                loop!.Trigger(control);
            }
        }
    }

    private void LogScheduled(TaskDefinition definition)
    {
        string[] notes =
        [
            .. definition.Spec.IsSuspended ? ["suspended"] : Array.Empty<string>(),
            .. definition.Selects(options.Labels) ? Array.Empty<string>() : ["not for this node (nodeSelector)"],
        ];
        if (notes.Length == 0)
        {
            logger.Information("task {Namespace:l}/{Task:l}: scheduled ({Schedule:l})", definition.Id.Namespace, definition.Id.Name, definition.Schedule.Expression);
        }
        else
        {
            logger.Information("task {Namespace:l}/{Task:l}: scheduled ({Schedule:l}), {Notes:l}", definition.Id.Namespace, definition.Id.Name,
                definition.Schedule.Expression, string.Join(", ", notes));
        }
    }

    private async Task DeleteAsync(StoredControl control)
    {
        try
        {
            using var timeout = new CancellationTokenSource(contender.RequestTimeout);
            await ledger.ConsumeStopAsync(control.Task, control.Id, control.ModifyIndex, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is ConsulException or OperationCanceledException)
        {
            // The requester removes it too.
        }
    }
}
