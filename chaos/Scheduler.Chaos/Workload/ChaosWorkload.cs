using System.Globalization;
using Dtask.Chaos.Evidence;
using Dtask.Consul;
using Dtask.Core.Durations;
using Dtask.Core.Manifests;
using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Core.Validation;

namespace Dtask.Chaos.Workload;

/// <summary>
/// The tasks the chaos run applies, and their command: a shell script that appends a <c>start</c> line, works, and
/// appends an <c>end</c> line to the witness log of its host (also when it is stopped with SIGTERM). Each host (network
/// namespace) has its own log, <c>witness-net&lt;inode&gt;.log</c>, named by the child itself from the inode of its
/// <c>/proc/$$/ns/net</c>, so which host a child ran on is not taken from dtask's word. The witness logs are written by
/// the children themselves, so they show what really ran, beside what the executors recorded in KV.
/// </summary>
public sealed class ChaosWorkload
{
    /// <summary>The namespace of every chaos task.</summary>
    public const string Namespace = "chaos";

    /// <summary>Finished run records kept per task: the most dtask allows, so the checker sees every slot of a run.</summary>
    public const int HistoryLimit = 1000;

    /// <summary>The default set: 1 s and 2 s periods, children that overlap the next slot, a Replace task and a long task.</summary>
    public static IReadOnlyList<ChaosTask> DefaultTasks { get; } =
    [
        new("tick-1s", 1, TimeSpan.FromMilliseconds(200), ConcurrencyPolicy.Forbid, "short run every second"),
        new("tick-2s", 2, TimeSpan.FromMilliseconds(300), ConcurrencyPolicy.Forbid, "short run every two seconds"),
        new("overlap-1s", 1, TimeSpan.FromMilliseconds(1400), ConcurrencyPolicy.Forbid, "outlives its 1 s period: every other slot is skipped"),
        new("overlap-2s", 2, TimeSpan.FromMilliseconds(2500), ConcurrencyPolicy.Forbid, "outlives its 2 s period"),
        new("replace-2s", 2, TimeSpan.FromMilliseconds(3000), ConcurrencyPolicy.Replace, "Replace: each slot stops the running child first"),
        new("long", 2, TimeSpan.FromSeconds(45), ConcurrencyPolicy.Forbid, "long-running: holds the lock across many slots; its child outlives a dead holder's session"),
    ];

    /// <summary>
    /// The set of <c>make chaos</c>: the default six and fourteen more at 3–10 s periods, Forbid and Replace, some with
    /// <c>placement: RoundRobin</c>, two with retries of children that fail half the time, four picked by the manual
    /// trigger stream (twenty tasks).
    /// </summary>
    public static IReadOnlyList<ChaosTask> FullTasks { get; } =
    [
        .. DefaultTasks,
        new("every-3s", 3, TimeSpan.FromMilliseconds(500), ConcurrencyPolicy.Forbid, "short run every three seconds"),
        new("rr-3s", 3, TimeSpan.FromMilliseconds(500), ConcurrencyPolicy.Forbid, "RoundRobin: the node that ran it least recently fires", Placement.RoundRobin),
        new("every-4s", 4, TimeSpan.FromSeconds(1), ConcurrencyPolicy.Forbid, "every four seconds, and manual triggers", Triggered: true),
        new("replace-4s", 4, TimeSpan.FromSeconds(6), ConcurrencyPolicy.Replace, "Replace, outliving its period"),
        new("every-5s", 5, TimeSpan.FromMilliseconds(500), ConcurrencyPolicy.Forbid, "every five seconds"),
        new("rr-5s", 5, TimeSpan.FromSeconds(1), ConcurrencyPolicy.Forbid, "RoundRobin every five seconds", Placement.RoundRobin),
        new("overlap-5s", 5, TimeSpan.FromSeconds(7), ConcurrencyPolicy.Forbid, "outlives its 5 s period"),
        new("retry-6s", 6, TimeSpan.FromMilliseconds(500), ConcurrencyPolicy.Forbid, "fails on odd pids; two retries", RetryLimit: 2),
        new("rr-7s", 7, TimeSpan.FromMilliseconds(500), ConcurrencyPolicy.Forbid, "RoundRobin every seven seconds, and manual triggers", Placement.RoundRobin, Triggered: true),
        new("replace-7s", 7, TimeSpan.FromSeconds(9), ConcurrencyPolicy.Replace, "Replace every seven seconds, and manual triggers", Triggered: true),
        new("retry-8s", 8, TimeSpan.FromSeconds(1), ConcurrencyPolicy.Forbid, "fails on odd pids; one retry, RoundRobin", Placement.RoundRobin, RetryLimit: 1),
        new("rr-9s", 9, TimeSpan.FromSeconds(3), ConcurrencyPolicy.Forbid, "RoundRobin every nine seconds", Placement.RoundRobin),
        new("every-10s", 10, TimeSpan.FromMilliseconds(500), ConcurrencyPolicy.Forbid, "every ten seconds, and manual triggers", Triggered: true),
        new("overlap-10s", 10, TimeSpan.FromSeconds(14), ConcurrencyPolicy.Forbid, "outlives its 10 s period"),
    ];

    /// <summary>A workload of <paramref name="tasks"/> whose children append to the witness logs in <paramref name="witnessFolder"/>.</summary>
    public ChaosWorkload(IReadOnlyList<ChaosTask> tasks, string witnessFolder, KvLayout layout)
    {
        ArgumentNullException.ThrowIfNull(tasks);
        ArgumentException.ThrowIfNullOrEmpty(witnessFolder);
        if (witnessFolder.Contains('\'', StringComparison.Ordinal))
        {
            throw new ArgumentException("the witness path must not contain a quote", nameof(witnessFolder));
        }

        Tasks = tasks;
        WitnessFolder = witnessFolder;
        Layout = layout ?? throw new ArgumentNullException(nameof(layout));
    }

    /// <summary>The tasks.</summary>
    public IReadOnlyList<ChaosTask> Tasks { get; }

    /// <summary>The folder of the witness logs, one per host (<see cref="WitnessLog.FileOf"/>).</summary>
    public string WitnessFolder { get; }

    /// <summary>Where the tasks and their state live in KV.</summary>
    public KvLayout Layout { get; }

    /// <summary>
    /// The child's script. It appends to the witness log of its own network namespace (the inode of <c>/proc/$$/ns/net</c>
    /// names the file). Witness lines: <c>task slot node fence start unix-ns run-id pid trigger=id seen=unix-ns up=seconds</c>
    /// and <c>task slot node fence end unix-ns run-id pid [stopped] status=N seen=unix-ns up=seconds</c>: <c>unix-ns</c> is the
    /// host's true wall clock (<c>date</c> run without the executor's libfaketime), <c>seen</c> the child's own (on its
    /// executor's clock), <c>up</c> the kernel's uptime, <c>trigger</c> the manual request it runs for (empty for a slot),
    /// <c>status</c> the exit status the child is about to exit with. The work is a background <c>sleep</c> the shell waits
    /// for, so a SIGTERM to the group runs the trap at once. A task with retries exits 1 when its pid is odd.
    /// </summary>
    public string ScriptOf(ChaosTask task)
    {
        ArgumentNullException.ThrowIfNull(task);
        var work = task.Work.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture);
        const string Fields = "$DTASK_TASK $DTASK_SLOT $DTASK_NODE $DTASK_FENCE";
        const string True = "$(env -u LD_PRELOAD date +%s%N)";
        const string Seen = "seen=$(date +%s%N) up=$(read u _ </proc/uptime; echo $u)";
        var status = task.FailsHalf ? "$(($$ % 2))" : "0";
        return "n=$(readlink /proc/$$/ns/net); n=${n#net:[}; n=${n%]}; "
            + $"w='{WitnessFolder}/{WitnessLog.FilePrefix}'\"$n\".log; "
            + $"echo \"{Fields} start {True} $DTASK_RUN_ID $$ trigger=$DTASK_TRIGGER {Seen}\" >> \"$w\"; "
            + $"trap 'echo \"{Fields} end {True} $DTASK_RUN_ID $$ stopped status=143 {Seen}\" >> \"$w\"; exit 143' TERM INT; "
            + $"sleep {work} & wait $!; s={status}; "
            + $"echo \"{Fields} end {True} $DTASK_RUN_ID $$ status=$s {Seen}\" >> \"$w\"; exit $s";
    }

    /// <summary>The spec of <paramref name="task"/>.</summary>
    public ScheduledTaskSpec SpecOf(ChaosTask task)
    {
        ArgumentNullException.ThrowIfNull(task);
        return new ScheduledTaskSpec
        {
            Every = task.PeriodSeconds.ToString(CultureInfo.InvariantCulture) + "s",
            Shell = ScriptOf(task),
            Timeout = ((int)Math.Ceiling(task.Work.TotalSeconds) + 10).ToString(CultureInfo.InvariantCulture) + "s",
            ConcurrencyPolicy = task.Policy,
            Placement = task.Placement == Placement.Any ? null : task.Placement,
            Retries = task.RetryLimit > 0 ? new RetryPolicy { Limit = task.RetryLimit, Backoff = GoDuration.Format(ChaosTask.RetryBackoff) } : null,
            History = HistoryLimit,
        };
    }

    /// <summary>Writes every task's spec envelope into KV, as <c>dtask apply</c> would.</summary>
    public async Task ApplyAsync(ConsulClient client, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(client);
        foreach (var task in Tasks)
        {
            var manifest = new ScheduledTask { Metadata = new ObjectMeta { Name = task.Name, Namespace = Namespace }, Spec = SpecOf(task) };
            var errors = TaskValidator.Validate(manifest);
            if (errors.Count > 0)
            {
                throw new InvalidOperationException($"task {Namespace}/{task.Name} is invalid: {string.Join("; ", errors)}");
            }

            var json = KvTaskSpec.From(manifest, TaskOwner.Cli).ToJson();
            if (!(await client.Kv.PutStringAsync(Layout.TaskKey(Namespace, task.Name), json, cancellationToken: cancellationToken).ConfigureAwait(false)).Value)
            {
                throw new InvalidOperationException($"could not write task {Namespace}/{task.Name}");
            }
        }
    }
}
