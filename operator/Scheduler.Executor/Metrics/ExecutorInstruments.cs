using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Dtask.Core.Metrics;
using Dtask.Executor.Notifications;

namespace Dtask.Executor.Metrics;

/// <summary>How a claim of a slot ended, as the <c>outcome</c> label of <c>dtask_claims_total</c> spells it.</summary>
public enum ClaimResult
{
    /// <summary><c>won</c>: this node claimed the slot and ran it.</summary>
    Won,

    /// <summary><c>lost</c>: another node claimed it first.</summary>
    Lost,

    /// <summary><c>refused</c>: not claimable (a previous run still holds the lock, the deadline passed).</summary>
    Refused,

    /// <summary><c>ambiguous</c>: the claim was sent but its answer was lost.</summary>
    Ambiguous,
}

/// <summary>What the per-task gauges read of one task: its next slot, its interval, whether it is suspended, and how many live executors may run it.</summary>
/// <param name="Namespace">The task's namespace.</param>
/// <param name="Task">The task's name.</param>
/// <param name="Next">Its next slot, when it has one.</param>
/// <param name="Interval">The time between its next slot and the one after, when it has both.</param>
/// <param name="Suspended">Whether it is suspended.</param>
/// <param name="Eligible">Live, unskewed executors whose labels match its <c>nodeSelector</c>.</param>
public sealed record TaskScheduleView(string Namespace, string Task, DateTimeOffset? Next, TimeSpan? Interval, bool Suspended, int Eligible);

/// <summary>
/// The executor's instruments, on one <see cref="System.Diagnostics.Metrics.Meter"/> per executor: Prometheus
/// (<see cref="PrometheusMeterExport"/>) and DogStatsD (<see cref="Notifications.DataDog.DataDogNotifier"/>) both read
/// these, so they cannot disagree. Names follow Prometheus conventions (base units, <c>_total</c>, <c>_seconds</c>);
/// labels are bounded: task and namespace, a state, reason, outcome or endpoint from a fixed set — never a slot or run id.
/// Run events arrive through <see cref="Notifier"/>; the rest through the <c>Count…</c> methods and the sources given
/// to <see cref="Observe"/>.
/// </summary>
public sealed class ExecutorInstruments : IDisposable
{
    /// <summary>The meter's name.</summary>
    public const string MeterName = "dtask.executor";

    /// <summary>Runs by final state (<c>succeeded</c>, <c>failed</c>, <c>timed_out</c>, <c>lost</c>).</summary>
    public const string RunsTotal = "dtask_task_runs_total";

    /// <summary>Slots recorded missed by this node, by reason.</summary>
    public const string MissedSlotsTotal = "dtask_task_missed_slots_total";

    /// <summary>Slots recorded skipped by this node, by reason.</summary>
    public const string SkippedSlotsTotal = "dtask_task_skipped_slots_total";

    /// <summary>Delay from the nominal slot to the child's start.</summary>
    public const string FireDelaySeconds = "dtask_fire_delay_seconds";

    /// <summary>Run duration.</summary>
    public const string RunDurationSeconds = "dtask_run_duration_seconds";

    /// <summary>Claims by outcome.</summary>
    public const string ClaimsTotal = "dtask_claims_total";

    /// <summary>Consul HTTP requests by endpoint and method.</summary>
    public const string ConsulRequestsTotal = "dtask_consul_requests_total";

    /// <summary>Consul HTTP requests that failed, by endpoint and method.</summary>
    public const string ConsulErrorsTotal = "dtask_consul_request_errors_total";

    /// <summary>Session renewals that succeeded.</summary>
    public const string SessionRenewalsTotal = "dtask_session_renewals_total";

    /// <summary>Sessions lost (invalidated or not renewed in time).</summary>
    public const string SessionLossesTotal = "dtask_session_losses_total";

    /// <summary>This clock minus the references' (seconds).</summary>
    public const string ClockSkewSeconds = "dtask_clock_skew_seconds";

    /// <summary>Children this executor runs now.</summary>
    public const string ChildrenAlive = "dtask_children_alive";

    /// <summary>Per task: the slot time of the last run this executor started (Unix seconds).</summary>
    public const string LastScheduleTime = "dtask_task_last_schedule_time_seconds";

    /// <summary>Per task: when the last run this executor ran succeeded (Unix seconds).</summary>
    public const string LastSuccessfulTime = "dtask_task_last_successful_time_seconds";

    /// <summary>Per task: its next slot (Unix seconds).</summary>
    public const string NextScheduleTime = "dtask_task_next_schedule_time_seconds";

    /// <summary>Per task: runs of it this executor runs now.</summary>
    public const string Running = "dtask_task_running";

    /// <summary>Per task: 1 when suspended.</summary>
    public const string Suspended = "dtask_task_suspended";

    /// <summary>Per task: the time between its next two slots (its period).</summary>
    public const string IntervalSeconds = "dtask_task_interval_seconds";

    /// <summary>Per task: live executors that may run it (labels match its nodeSelector, clock not skewed).</summary>
    public const string EligibleExecutors = "dtask_task_eligible_executors";

    /// <summary>The clock skew limit of this executor (seconds).</summary>
    public const string ClockSkewLimitSeconds = "dtask_clock_skew_limit_seconds";

    /// <summary>Tag keys.</summary>
    public const string NamespaceTag = "namespace", TaskTag = "task", NodeTag = "node", StateTag = "state", ReasonTag = "reason",
        OutcomeTag = "outcome", EndpointTag = "endpoint", MethodTag = "method";

    private readonly ConcurrentDictionary<(string Namespace, string Task), TaskTimes> times = new();
    private readonly Counter<long> runs;
    private readonly Counter<long> missed;
    private readonly Counter<long> skipped;
    private readonly Histogram<double> fireDelay;
    private readonly Histogram<double> runDuration;
    private readonly Counter<long> claims;
    private readonly Counter<long> consulRequests;
    private readonly Counter<long> consulErrors;
    private readonly Counter<long> renewals;
    private readonly Counter<long> losses;
    private Func<IEnumerable<TaskScheduleView>> schedules = () => [];
    private Func<TimeSpan?> skew = () => null;
    private Func<TimeSpan?> skewLimit = () => null;
    private Func<string, string, bool> exists = (_, _) => true;
    private Func<int> children = () => 0;
    private readonly TimeProvider time;

    /// <summary>Creates the meter and its instruments.</summary>
    /// <param name="time">The clock of the last-success gauge; the system's when null.</param>
    public ExecutorInstruments(TimeProvider? time = null)
    {
        this.time = time ?? TimeProvider.System;
        Meter = new Meter(MeterName);
        runs = Meter.CreateCounter<long>(RunsTotal, description: "Runs finished on this executor, by final state.");
        missed = Meter.CreateCounter<long>(MissedSlotsTotal, description: "Slots this executor recorded missed, by reason.");
        skipped = Meter.CreateCounter<long>(SkippedSlotsTotal, description: "Slots this executor recorded skipped, by reason.");
        fireDelay = Meter.CreateHistogram(FireDelaySeconds, "s", "Delay from a slot's nominal time to its child's start.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300] });
        runDuration = Meter.CreateHistogram(RunDurationSeconds, "s", "How long runs took.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.1, 1, 5, 15, 60, 300, 900, 3600, 10800, 43200] });
        claims = Meter.CreateCounter<long>(ClaimsTotal, description: "Claims of slots by outcome: won, lost (to another node), refused, ambiguous.");
        consulRequests = Meter.CreateCounter<long>(ConsulRequestsTotal, description: "Consul HTTP requests sent, by endpoint and method.");
        consulErrors = Meter.CreateCounter<long>(ConsulErrorsTotal, description: "Consul HTTP requests that failed (unreachable, timeout, error status), by endpoint and method.");
        renewals = Meter.CreateCounter<long>(SessionRenewalsTotal, description: "Consul session renewals that succeeded.");
        losses = Meter.CreateCounter<long>(SessionLossesTotal, description: "Consul sessions of this executor that were lost.");
        Meter.CreateObservableGauge(ClockSkewSeconds, () => skew() is { } s ? [new Measurement<double>(s.TotalSeconds)] : Array.Empty<Measurement<double>>(),
            "s", "This machine's clock minus the reference clocks' (median estimate).");
        Meter.CreateObservableGauge(ChildrenAlive, () => children(), description: "Children this executor runs now.");
        Meter.CreateObservableGauge(LastScheduleTime, () => TimeGauge(t => t.LastSchedule), "s", "Slot time of the last run this executor started of the task (Unix seconds).");
        Meter.CreateObservableGauge(LastSuccessfulTime, () => TimeGauge(t => t.LastSuccess), "s", "When the last successful run of the task on this executor finished (Unix seconds).");
        Meter.CreateObservableGauge(Running, () => Known().Select(t => new Measurement<long>(t.Value.Running, TaskTags(t.Key))),
            description: "Runs of the task this executor runs now.");
        Meter.CreateObservableGauge(NextScheduleTime, () => schedules().Where(s => s.Next is not null)
            .Select(s => new Measurement<double>(s.Next!.Value.ToUnixTimeSeconds(), TaskTags((s.Namespace, s.Task)))), "s", "The task's next slot (Unix seconds).");
        Meter.CreateObservableGauge(Suspended, () => schedules().Select(s => new Measurement<long>(s.Suspended ? 1 : 0, TaskTags((s.Namespace, s.Task)))),
            description: "1 when the task is suspended.");
        Meter.CreateObservableGauge(IntervalSeconds, () => schedules().Where(s => s.Interval is not null)
            .Select(s => new Measurement<double>(s.Interval!.Value.TotalSeconds, TaskTags((s.Namespace, s.Task)))), "s", "Time between the task's next two slots.");
        Meter.CreateObservableGauge(EligibleExecutors, () => schedules().Select(s => new Measurement<long>(s.Eligible, TaskTags((s.Namespace, s.Task)))),
            description: "Live executors whose labels match the task's nodeSelector and whose clock is not skewed.");
        Meter.CreateObservableGauge(ClockSkewLimitSeconds, () => skewLimit() is { } l ? [new Measurement<double>(l.TotalSeconds)] : Array.Empty<Measurement<double>>(),
            "s", "The clock skew beyond which this executor claims and records nothing.");
        Notifier = new Recorder(this);
    }

    /// <summary>Raised after the measurements of one run event were recorded, on the recording thread, with the task's notification settings.</summary>
    public event Action<TaskNotification?>? Recorded;

    /// <summary>The meter.</summary>
    public Meter Meter { get; }

    /// <summary>Records run events into the instruments (add it to the executor's notifiers; disposing it does nothing).</summary>
    public IRunNotifier Notifier { get; }

    /// <summary>The label of a claim outcome.</summary>
    /// <param name="outcome">The outcome.</param>
    /// <returns><c>won</c>, <c>lost</c>, <c>refused</c> or <c>ambiguous</c>.</returns>
    public static string Label(ClaimResult outcome) => outcome.ToString().ToLowerInvariant();

    /// <summary>Whether Prometheus shows a tag as a label: the node is the scrape target's own, and histograms are per executor (no task labels).</summary>
    /// <param name="instrument">The instrument.</param>
    /// <param name="tag">The tag key.</param>
    /// <returns>Whether it becomes a label.</returns>
    public static bool PrometheusLabel(System.Diagnostics.Metrics.Instrument instrument, string tag)
    {
        ArgumentNullException.ThrowIfNull(instrument);
        return tag != NodeTag && !(instrument is Histogram<double> && tag is NamespaceTag or TaskTag);
    }

    /// <summary>Sets what the observable gauges read.</summary>
    /// <param name="tasks">The tasks with their next slot and suspension.</param>
    /// <param name="clockSkew">The clock skew estimate, null while unknown.</param>
    /// <param name="childrenAlive">How many children run now.</param>
    /// <param name="clockSkewLimit">The skew limit; not reported when null.</param>
    /// <param name="taskExists">Whether a task (namespace, name) still exists: the run gauges of deleted tasks are not reported; all are when null.</param>
    public void Observe(Func<IEnumerable<TaskScheduleView>> tasks, Func<TimeSpan?> clockSkew, Func<int> childrenAlive, TimeSpan? clockSkewLimit = null,
        Func<string, string, bool>? taskExists = null)
    {
        skewLimit = () => clockSkewLimit;
        exists = taskExists ?? exists;
        ArgumentNullException.ThrowIfNull(tasks);
        ArgumentNullException.ThrowIfNull(clockSkew);
        ArgumentNullException.ThrowIfNull(childrenAlive);
        schedules = tasks;
        skew = clockSkew;
        children = childrenAlive;
    }

    /// <summary>Counts a claim.</summary>
    /// <param name="outcome">How it ended.</param>
    public void CountClaim(ClaimResult outcome) => claims.Add(1, new KeyValuePair<string, object?>(OutcomeTag, Label(outcome)));

    /// <summary>Counts a slot this node recorded skipped.</summary>
    /// <param name="ns">The task's namespace.</param>
    /// <param name="task">The task's name.</param>
    /// <param name="reason">Why (a fixed reason such as <c>still-running</c>).</param>
    public void CountSkipped(string ns, string task, string reason) =>
        skipped.Add(1, new(NamespaceTag, ns), new(TaskTag, task), new(ReasonTag, reason));

    /// <summary>Counts a Consul request (see <see cref="ConsulEndpoint"/>).</summary>
    /// <param name="endpoint">The endpoint family, e.g. <c>kv</c> or <c>session/renew</c>.</param>
    /// <param name="method">GET, PUT or DELETE.</param>
    /// <param name="failed">Whether it failed.</param>
    public void CountConsulRequest(string endpoint, string method, bool failed)
    {
        var tags = new TagList { { EndpointTag, endpoint }, { MethodTag, method } };
        consulRequests.Add(1, tags);
        if (failed)
        {
            consulErrors.Add(1, tags);
        }
        else if (endpoint == "session/renew")
        {
            renewals.Add(1);
        }
    }

    /// <summary>Counts a lost session.</summary>
    public void CountSessionLoss() => losses.Add(1);

    /// <summary>The bounded endpoint label of a Consul API path: <c>kv</c> for any key, else the two segments after <c>/v1/</c> (<c>session/renew</c>, <c>txn</c>, <c>status/leader</c>).</summary>
    /// <param name="path">The request path, e.g. <c>/v1/session/renew/ID</c>.</param>
    /// <returns>The endpoint.</returns>
    public static string ConsulEndpoint(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var parts = path.Split('?')[0].Split('/', StringSplitOptions.RemoveEmptyEntries);
        var rest = parts.Length > 0 && parts[0] == "v1" ? parts[1..] : parts;
        return rest.Length switch
        {
            0 => "other",
            _ when rest[0] is "kv" or "txn" => rest[0],
            1 => rest[0],
            _ => rest[0] + "/" + rest[1],
        };
    }

    /// <inheritdoc />
    public void Dispose() => Meter.Dispose();

    private static KeyValuePair<string, object?>[] TaskTags((string Namespace, string Task) task) =>
        [new(NamespaceTag, task.Namespace), new(TaskTag, task.Task)];

    private IEnumerable<Measurement<double>> TimeGauge(Func<TaskTimes, DateTimeOffset?> pick) =>
        Known().Select(t => (t.Key, At: pick(t.Value))).Where(t => t.At is not null)
            .Select(t => new Measurement<double>(t.At!.Value.ToUnixTimeMilliseconds() / 1000.0, TaskTags(t.Key)));

    private IEnumerable<KeyValuePair<(string Namespace, string Task), TaskTimes>> Known() => times.Where(t => exists(t.Key.Namespace, t.Key.Task));

    private TaskTimes Times(string ns, string task) => times.GetOrAdd((ns, task), _ => new TaskTimes());

    private static KeyValuePair<string, object?>[] RunTags(string ns, string task, string node) =>
        [new(NamespaceTag, ns), new(TaskTag, task), new(NodeTag, node)];

    private sealed class TaskTimes
    {
        // Run ids in progress: a run's attempts (retries) each report a start, its end comes once.
        private readonly ConcurrentDictionary<string, byte> running = new(StringComparer.Ordinal);

        public DateTimeOffset? LastSchedule { get; set; }

        public DateTimeOffset? LastSuccess { get; set; }

        public int Running => running.Count;

        public void Start(string runId) => running.TryAdd(runId, 0);

        public void Stop(string runId) => running.TryRemove(runId, out _);
    }

    /// <summary>Run events into the instruments.</summary>
    private sealed class Recorder(ExecutorInstruments owner) : IRunNotifier
    {
        public void RunStarted(RunContext run)
        {
            ArgumentNullException.ThrowIfNull(run);
            var times = owner.Times(run.Namespace, run.Task);
            times.Start(run.RunId);
            if (times.LastSchedule is not { } last || last < run.SlotTime)
            {
                times.LastSchedule = run.SlotTime;
            }

            owner.fireDelay.Record(Math.Max(0, run.FireDelay.TotalSeconds), RunTags(run.Namespace, run.Task, run.Node));
            owner.Recorded?.Invoke(run.Notify);
        }

        public void RunFinished(RunContext run, RunOutcome outcome)
        {
            ArgumentNullException.ThrowIfNull(run);
            ArgumentNullException.ThrowIfNull(outcome);
            var times = owner.Times(run.Namespace, run.Task);
            times.Stop(run.RunId);
            if (outcome.Result == RunResult.Succeeded)
            {
                times.LastSuccess = owner.time.GetUtcNow();
            }

            var tags = RunTags(run.Namespace, run.Task, run.Node);
            owner.runDuration.Record(Math.Max(0, outcome.Duration.TotalSeconds), tags);
            owner.runs.Add(1, [.. tags, new(StateTag, Notifications.DataDog.DataDogNotifier.ResultTag(outcome.Result))]);
            owner.Recorded?.Invoke(run.Notify);
        }

        public void SlotMissed(MissedSlot slot)
        {
            ArgumentNullException.ThrowIfNull(slot);
            owner.missed.Add(1, [.. RunTags(slot.Namespace, slot.Task, slot.Node), new(ReasonTag, slot.Reason)]);
            owner.Recorded?.Invoke(slot.Notify);
        }

        public void LockLost(RunContext run, string reason)
        {
            ArgumentNullException.ThrowIfNull(run);
            owner.Times(run.Namespace, run.Task).Stop(run.RunId);
            owner.runs.Add(1, [.. RunTags(run.Namespace, run.Task, run.Node), new(StateTag, "lost")]);
            owner.Recorded?.Invoke(run.Notify);
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
