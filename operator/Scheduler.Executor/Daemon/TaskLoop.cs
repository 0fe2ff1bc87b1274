using Dtask.Consul.Errors;
using Dtask.Core.Durations;
using Dtask.Core.Scheduling;
using Dtask.Executor.Claims;
using Dtask.Executor.Ledger;
using Serilog;

namespace Dtask.Executor.Daemon;

/// <summary>
/// The scheduling loop of one task on this executor: plan with <see cref="DuePlanner"/>, hand each due slot to a
/// <see cref="SlotContender"/> (in the background, so the loop goes on while a child runs), record missed slots, sleep on
/// the <see cref="TimeProvider"/> until the next fire time or until the task's spec changes, and plan again.
/// </summary>
/// <remarks>
/// <para><b>Last handled slot.</b> Read from the run record when the loop starts (one batched read for all the loops
/// that start together, see <see cref="RunRecordBatchReader"/>), then kept here: every slot the loop has
/// handed on or recorded. Read again before planning after a gap: when the task changed, when it selects this node
/// again, and when the loop wakes much later than it asked (the process was stopped, the host suspended), so slots
/// handled elsewhere meanwhile are not planned here (and <see cref="Claims.SlotMarker"/> never marks a slot at or before
/// the run record's). <b>Earliest time</b> (slots at or before it are never due): the run record's slot when the
/// task has one; for a task that never ran, the instant this executor first saw it; after a resume, the instant this
/// executor saw the resume, or the resume's stamp in the task's value (<see cref="TaskDefinition.ResumedAt"/>), whichever
/// is later, so an executor that starts after a resume does not take the slots of the suspension for missed ones.</para>
/// <para><b>Suspend.</b> While <c>suspend: true</c> nothing is planned, claimed or written; slots during the suspension
/// are not recorded, and after the resume only slots after it are due (a suspended <c>every: 1s</c> task costs
/// nothing). A child already running is left alone.</para>
/// <para><b>nodeSelector.</b> A task that does not select this node's labels is not planned here.</para>
/// </remarks>
public sealed class TaskLoop : IAsyncDisposable
{
    private readonly SlotContender contender;
    private readonly ITaskLedger ledger;
    private readonly ExecutorOptions options;
    private readonly TimeProvider time;
    private readonly ILogger logger;
    private readonly Action<Task> track;
    private readonly CancellationTokenSource stop;
    private readonly CancellationToken claiming;
    private readonly Lock gate = new();
    private readonly DateTimeOffset firstSeen;
    private DateTimeOffset? lastPlanned;
    private readonly Task loop;
    private TaskDefinition definition;
    private CancellationTokenSource replan = new();
    private DateTimeOffset? resumedAt;
    private long? lastHandled;
    private bool stale;
    private bool tooManyLogged;

    /// <summary>Starts the loop of <paramref name="definition"/>.</summary>
    /// <param name="definition">The task as first seen.</param>
    /// <param name="contender">Fires slots.</param>
    /// <param name="ledger">Where the run record is read at the start (batched with the other loops that start at once).</param>
    /// <param name="options">The executor's settings.</param>
    /// <param name="time">The clock.</param>
    /// <param name="logger">The log.</param>
    /// <param name="track">Receives every background fire, so shutdown can wait for it.</param>
    /// <param name="claiming">Cancelled when the executor stops claiming (shutdown).</param>
    public TaskLoop(TaskDefinition definition, SlotContender contender, ITaskLedger ledger, ExecutorOptions options, TimeProvider time, ILogger logger,
        Action<Task> track, CancellationToken claiming)
    {
        this.definition = definition ?? throw new ArgumentNullException(nameof(definition));
        this.contender = contender;
        this.ledger = ledger;
        this.options = options;
        this.time = time;
        this.logger = logger;
        this.track = track;
        stop = CancellationTokenSource.CreateLinkedTokenSource(claiming);
        this.claiming = stop.Token;
        firstSeen = time.GetUtcNow();
        loop = RunAsync();
    }

    /// <summary>The task as last seen.</summary>
    public TaskDefinition Definition
    {
        get
        {
            lock (gate)
            {
                return definition;
            }
        }
    }

    /// <summary>Takes a new version of the task and plans again.</summary>
    public void Update(TaskDefinition next)
    {
        ArgumentNullException.ThrowIfNull(next);
        CancellationTokenSource old;
        lock (gate)
        {
            if (next.ModifyIndex == definition.ModifyIndex)
            {
                return;
            }

            if (definition.Spec.IsSuspended && !next.Spec.IsSuspended)
            {
                resumedAt = time.GetUtcNow();
                logger.Information("task {Namespace:l}/{Task:l} resumed; slots after now are due", next.Id.Namespace, next.Id.Name);
            }
            else if (!definition.Spec.IsSuspended && next.Spec.IsSuspended)
            {
                logger.Information("task {Namespace:l}/{Task:l} suspended; no slot fires until it is resumed", next.Id.Namespace, next.Id.Name);
            }
            else
            {
                logger.Information("task {Namespace:l}/{Task:l} changed (index {Index}); planning again", next.Id.Namespace, next.Id.Name, next.ModifyIndex);
            }

            definition = next;
            stale = true; // The run record may have moved on meanwhile (e.g. while this node was not selected).
            old = replan;
            replan = new CancellationTokenSource();
        }

        old.Cancel();
        old.Dispose();
    }

    /// <summary>Contends for a manual run (a trigger request): not a slot; it waits while the task is busy, within the trigger's life.</summary>
    public void Trigger(StoredControl control)
    {
        ArgumentNullException.ThrowIfNull(control);
        var task = Definition;
        logger.Information("task {Namespace:l}/{Task:l}: manual run requested (trigger {Id:l}, #{Sequence})", task.Id.Namespace, task.Id.Name, control.Id, control.CreateIndex);
        track(contender.ContendManualAsync(task, control.AsTrigger(), claiming));
    }

    private async Task RunAsync()
    {
        await Task.Yield();
        try
        {
            await ReadLastSlotAsync().ConfigureAwait(false);
            var idle = false;
            while (!claiming.IsCancellationRequested)
            {
                TaskDefinition task;
                CancellationToken changed;
                DateTimeOffset? resumed;
                bool refresh;
                lock (gate)
                {
                    task = definition;
                    changed = replan.Token;
                    resumed = resumedAt;
                    refresh = stale;
                    stale = false;
                }

                using var wake = CancellationTokenSource.CreateLinkedTokenSource(changed, claiming);
                if (task.Spec.IsSuspended || !task.Selects(options.Labels))
                {
                    idle = true;
                    await SleepAsync(Timeout.InfiniteTimeSpan, wake.Token).ConfigureAwait(false);
                    continue;
                }

                if (refresh || idle)
                {
                    // Planning after a gap (the task changed, or selects this node again): the slots handled elsewhere
                    // meanwhile are not this loop's to consider.
                    await ReadLastSlotAsync().ConfigureAwait(false);
                    idle = false;
                }

                var planning = time.GetUtcNow();
                if (lastPlanned is { } planned && planning < planned - PauseTolerance)
                {
                    // This clock was set back (it ran ahead): the slots handed on while it was ahead are not due yet; plan
                    // again from the run record.
                    logger.Warning("task {Namespace:l}/{Task:l}: this clock went back {Seconds:0} s; planning again from the run record",
                        task.Id.Namespace, task.Id.Name, (planned - planning).TotalSeconds);
                    lastHandled = null;
                    await ReadLastSlotAsync().ConfigureAwait(false);
                }

                lastPlanned = planning;
                var next = Plan(task, resumed);
                if (next is { } at)
                {
                    var delay = at - time.GetUtcNow();
                    await SleepAsync(delay > TimeSpan.Zero ? delay : TimeSpan.Zero, wake.Token).ConfigureAwait(false);
                    if (time.GetUtcNow() - at > PauseTolerance)
                    {
                        // Woken far later than asked (the process was stopped, the host suspended, the clock jumped):
                        // others may have handled the slots in between; read the run record before planning them.
                        lock (gate)
                        {
                            stale = true;
                        }
                    }
                }
                else
                {
                    await SleepAsync(Timeout.InfiniteTimeSpan, wake.Token).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException) when (claiming.IsCancellationRequested)
        {
            // Stopped.
        }
        catch (Exception e)
        {
            logger.Error(e, "task {Namespace:l}/{Task:l}: scheduling loop failed", definition.Id.Namespace, definition.Id.Name);
        }
    }

    /// <summary>Plans at now, starts what is due, and returns when to plan again.</summary>
    private DateTimeOffset? Plan(TaskDefinition task, DateTimeOffset? resumed)
    {
        var now = time.GetUtcNow();
        DateTimeOffset? last = lastHandled is { } l ? DateTimeOffset.FromUnixTimeSeconds(l) : null;
        var earliest = last ?? firstSeen;
        if (resumed is { } r && r > earliest)
        {
            earliest = r;
        }

        if (task.ResumedAt is { } stamped && stamped > earliest)
        {
            earliest = stamped; // Resumed before this executor saw the task: the slots of the suspension are not due here either.
        }

        var plan = DuePlanner.Plan(task.Schedule, last, earliest, now, task.Spec.StartingDeadlineDuration, task.Spec.EffectiveMissedRunPolicy);
        if (plan.TooManyMissed && !tooManyLogged)
        {
            logger.Warning("task {Namespace:l}/{Task:l}: more than {Cap} slots were missed; check the clock or set startingDeadline", task.Id.Namespace, task.Id.Name, DuePlanner.CountCap);
            tooManyLogged = true;
        }

        var missed = plan.Missed.Select(s => s.Id).ToList();
        Task? recording = null;
        if (plan.Decision == DueDecision.TooLate && plan.MostRecentDue is { } late && !missed.Contains(late.Id))
        {
            missed.Add(late.Id);
        }

        if (missed.Count > 0)
        {
            if (plan.MissedCount > missed.Count)
            {
                logger.Warning("task {Namespace:l}/{Task:l}: {Count} slots were missed; recording the newest {Listed}", task.Id.Namespace, task.Id.Name, plan.MissedCount, missed.Count);
            }

            recording = RecordMissedAsync(task, missed);
            track(recording);
            lastHandled = Math.Max(lastHandled ?? long.MinValue, missed[^1]);
        }

        if (plan.Decision == DueDecision.Fire && plan.Fire is { } fire)
        {
            var fireTime = task.Schedule.FireTime(fire);
            var deadline = plan.FireBy ?? DateTimeOffset.MaxValue;
            if (plan.NextFireTime is { } nextFire && nextFire < deadline)
            {
                deadline = nextFire;
            }

            var ticket = new SlotTicket(fire.Id, fireTime, deadline) { NotDueUntil = resumed };
            // The missed slots first: once this one is claimed, they are before the run record's slot and get no marker.
            track(recording is null ? contender.ContendAsync(task, ticket, claiming) : AfterAsync(recording, () => contender.ContendAsync(task, ticket, claiming)));
            lastHandled = Math.Max(lastHandled ?? long.MinValue, fire.Id);
        }

        return plan.NextFireTime;
    }

    /// <summary>Starts <paramref name="then"/> once <paramref name="first"/> has ended, however it ended.</summary>
    private static async Task AfterAsync(Task first, Func<Task> then)
    {
        await Task.WhenAny(first).ConfigureAwait(false);
        await then().ConfigureAwait(false);
    }

    /// <summary>
    /// Records <paramref name="slots"/> missed (retrying while Consul cannot be reached); when the executor shuts down
    /// first, logs that they are left to the next executor that plans the task.
    /// </summary>
    private async Task RecordMissedAsync(TaskDefinition task, List<long> slots)
    {
        try
        {
            await contender.RecordMissedAsync(task, slots, RunReasons.NotFiredInTime, claiming).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (claiming.IsCancellationRequested)
        {
            logger.Information("task {Namespace:l}/{Task:l}: slots {First} to {Last} not recorded missed here: the executor is shutting down; "
                + "the other executors or the next one to plan the task record them", task.Id.Namespace, task.Id.Name, slots[0], slots[^1]);
        }
    }

    /// <summary>
    /// Reads the run record's slot (batched with the other loops reading at once) into the last handled slot, which only
    /// moves forward: the slots this loop handed on stay handled.
    /// </summary>
    private async Task ReadLastSlotAsync()
    {
        var backoff = new Backoff(TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(5));
        while (true)
        {
            try
            {
                // Slot 0: only manual runs so far (a manual run keeps the slot of the record before it).
                var stored = await ledger.ReadRunBatchedAsync(Definition.Id, claiming).ConfigureAwait(false);
                if (stored.Record is { Slot: > 0 } record)
                {
                    lastHandled = Math.Max(lastHandled ?? long.MinValue, record.Slot);
                }
                else if (stored.Record is null && stored.ModifyIndex != 0)
                {
                    // Garbage in the run record key: read as no record; the next claim replaces it (CAS at this index).
                    logger.Error("task {Namespace:l}/{Task:l}: the run record (index {Index}) is not a run record and is ignored; the task runs on",
                        Definition.Id.Namespace, Definition.Id.Name, stored.ModifyIndex);
                }

                return;
            }
            catch (ConsulException)
            {
                await Task.Delay(backoff.Next(), time, claiming).ConfigureAwait(false);
            }
        }
    }

    /// <summary>How much later than its planned wake-up the loop may wake before it reads the run record again.</summary>
    private static readonly TimeSpan PauseTolerance = TimeSpan.FromSeconds(5);

    private async Task SleepAsync(TimeSpan delay, CancellationToken wake)
    {
        try
        {
            await Task.Delay(delay, time, wake).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!claiming.IsCancellationRequested)
        {
            // Woken by a change: plan again.
        }
    }

    /// <summary>Stops planning (a background fire goes on until its slot is decided).</summary>
    public async ValueTask DisposeAsync()
    {
        await stop.CancelAsync().ConfigureAwait(false);
        await loop.ConfigureAwait(false);
        stop.Dispose();
        lock (gate)
        {
            replan.Dispose();
        }
    }
}
