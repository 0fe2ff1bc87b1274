using System.Text.Json.Serialization;
using Dtask.Core.Durations;
using Dtask.Core.Scheduling;

namespace Dtask.Core.Model;

/// <summary>
/// The desired state of a task. Durations stay the strings the user wrote (so a manifest round-trips exactly);
/// the <c>…Duration</c> accessors parse them and assume the spec passed validation.
/// </summary>
public sealed record ScheduledTaskSpec
{
    /// <summary>The default of <see cref="History"/>.</summary>
    public const int DefaultHistory = 10;

    /// <summary>Cron: 5 or 6 fields or a macro such as <c>@hourly</c>; <c>H</c> means a value hashed from the task's name. Exactly one of this and <see cref="Every"/>.</summary>
    public string? Schedule { get; init; }

    /// <summary>A period such as <c>90s</c> or <c>1h</c>; slots are multiples of it since the Unix epoch. Exactly one of this and <see cref="Schedule"/>.</summary>
    public string? Every { get; init; }

    /// <summary>IANA time zone of <see cref="Schedule"/>; UTC when absent.</summary>
    public string? TimeZone { get; init; }

    /// <summary>Upper bound of a random delay added to each fire (same on every node for a slot).</summary>
    public string? Jitter { get; init; }

    /// <summary>The argv to execute, without a shell. Exactly one of this and <see cref="Shell"/>.</summary>
    public IReadOnlyList<string>? Command { get; init; }

    /// <summary>A script run by <c>/bin/sh -c</c>. Exactly one of this and <see cref="Command"/>.</summary>
    public string? Shell { get; init; }

    /// <summary>Environment variables added to the child's environment.</summary>
    public IReadOnlyList<EnvVar>? Env { get; init; }

    /// <summary>The child's working directory (absolute).</summary>
    public string? WorkingDir { get; init; }

    /// <summary>How long a run may take before its process group is stopped.</summary>
    public string? Timeout { get; init; }

    /// <summary>What to do when a slot comes while the previous run still goes; <see cref="Model.ConcurrencyPolicy.Forbid"/> when absent.</summary>
    public ConcurrencyPolicy? ConcurrencyPolicy { get; init; }

    /// <summary>How late after its slot a run may still start; later slots count as missed.</summary>
    public string? StartingDeadline { get; init; }

    /// <summary>What to do with slots nobody could fire; <see cref="Model.MissedRunPolicy.Skip"/> when absent.</summary>
    public MissedRunPolicy? MissedRunPolicy { get; init; }

    /// <summary>Retries of a failed run within the slot's deadline.</summary>
    public RetryPolicy? Retries { get; init; }

    /// <summary>Labels an executor must advertise to be eligible.</summary>
    public IReadOnlyDictionary<string, string>? NodeSelector { get; init; }

    /// <summary>Which eligible node fires; <see cref="Model.Placement.Any"/> when absent.</summary>
    public Placement? Placement { get; init; }

    /// <summary>When true, no new slot fires; a running child is left alone.</summary>
    public bool? Suspend { get; init; }

    /// <summary>Where to report runs.</summary>
    public NotifySpec? Notify { get; init; }

    /// <summary>How many finished run records to keep; <see cref="DefaultHistory"/> when absent.</summary>
    public int? History { get; init; }

    /// <summary><see cref="Every"/> parsed.</summary>
    [JsonIgnore]
    public TimeSpan? EveryDuration => ParseOptional(Every);

    /// <summary><see cref="Jitter"/> parsed; zero when absent.</summary>
    [JsonIgnore]
    public TimeSpan JitterDuration => ParseOptional(Jitter) ?? TimeSpan.Zero;

    /// <summary><see cref="Timeout"/> parsed; null means no timeout.</summary>
    [JsonIgnore]
    public TimeSpan? TimeoutDuration => ParseOptional(Timeout);

    /// <summary><see cref="StartingDeadline"/> parsed; null means no deadline other than the next slot.</summary>
    [JsonIgnore]
    public TimeSpan? StartingDeadlineDuration => ParseOptional(StartingDeadline);

    /// <summary><see cref="ConcurrencyPolicy"/> or its default.</summary>
    [JsonIgnore]
    public ConcurrencyPolicy EffectiveConcurrencyPolicy => ConcurrencyPolicy ?? Model.ConcurrencyPolicy.Forbid;

    /// <summary><see cref="MissedRunPolicy"/> or its default.</summary>
    [JsonIgnore]
    public MissedRunPolicy EffectiveMissedRunPolicy => MissedRunPolicy ?? Model.MissedRunPolicy.Skip;

    /// <summary><see cref="Placement"/> or its default.</summary>
    [JsonIgnore]
    public Placement EffectivePlacement => Placement ?? Model.Placement.Any;

    /// <summary><see cref="Suspend"/> or false.</summary>
    [JsonIgnore]
    public bool IsSuspended => Suspend ?? false;

    /// <summary><see cref="History"/> or <see cref="DefaultHistory"/>.</summary>
    [JsonIgnore]
    public int EffectiveHistory => History ?? DefaultHistory;

    /// <summary>The schedule part as the schedule math needs it; <paramref name="hashKey"/> is <c>namespace/name</c>.</summary>
    /// <exception cref="FormatException">When <see cref="Every"/> or <see cref="Jitter"/> is not a duration (validate first).</exception>
    public ScheduleSpec ToScheduleSpec(string hashKey) =>
        new(Schedule, EveryDuration, TimeZone, ParseOptional(Jitter), hashKey);

    internal static TimeSpan? ParseOptional(string? text) => text is null ? null : GoDuration.Parse(text);
}

/// <summary>An environment variable for the child, written the Kubernetes way.</summary>
public sealed record EnvVar
{
    /// <summary><c>[A-Za-z_][A-Za-z0-9_]*</c>, not starting with <c>DTASK_</c>.</summary>
    public string? Name { get; init; }

    /// <summary>
    /// The value; empty when absent. With <see cref="EnvVarSource.SecretKeyRef"/>, the Secret's value the operator
    /// resolved (it is written to Consul: see docs/operations.md, "Kubernetes Secrets").
    /// </summary>
    public string? Value { get; init; }

    /// <summary>Where the value comes from instead of <see cref="Value"/>, read by the executor when the run starts (a secret kept out of Consul).</summary>
    public EnvVarSource? ValueFrom { get; init; }
}

/// <summary>The source of an environment variable's value, read on the node when a run starts and never recorded.</summary>
public sealed record EnvVarSource
{
    /// <summary>An absolute path on the node whose content (one trailing newline dropped) is the value.</summary>
    public string? File { get; init; }

    /// <summary>
    /// A key of a Kubernetes Secret in the task's namespace, resolved by the operator's Kubernetes source when it runs
    /// with <c>--resolve-secrets</c> (the value is then written into the spec in Consul, into <see cref="EnvVar.Value"/>).
    /// </summary>
    public SecretKeySelector? SecretKeyRef { get; init; }
}

/// <summary>One key of a Kubernetes Secret, as in a Pod's <c>env[].valueFrom.secretKeyRef</c>.</summary>
public sealed record SecretKeySelector
{
    /// <summary>The Secret's name, in the task's namespace.</summary>
    public string? Name { get; init; }

    /// <summary>The key in the Secret's <c>data</c>.</summary>
    public string? Key { get; init; }
}

/// <summary>Retries of a failed run.</summary>
public sealed record RetryPolicy
{
    /// <summary>How many more attempts after the first failure (0 when absent).</summary>
    public int? Limit { get; init; }

    /// <summary>Wait before the first retry, doubled for each next one; 10s when absent.</summary>
    public string? Backoff { get; init; }

    /// <summary>The default of <see cref="Backoff"/>.</summary>
    public static readonly TimeSpan DefaultBackoff = TimeSpan.FromSeconds(10);

    /// <summary><see cref="Limit"/> or 0.</summary>
    [JsonIgnore]
    public int EffectiveLimit => Limit ?? 0;

    /// <summary><see cref="Backoff"/> parsed, or <see cref="DefaultBackoff"/>.</summary>
    [JsonIgnore]
    public TimeSpan BackoffDuration => ScheduledTaskSpec.ParseOptional(Backoff) ?? DefaultBackoff;
}

/// <summary>Where runs are reported.</summary>
public sealed record NotifySpec
{
    /// <summary>Slack incoming-webhook messages. The webhook URL is a secret given to the executor, never in the manifest.</summary>
    public SlackNotify? Slack { get; init; }

    /// <summary>DataDog metrics with extra tags.</summary>
    public DatadogNotify? Datadog { get; init; }
}

/// <summary>Slack notification settings of a task.</summary>
public sealed record SlackNotify
{
    /// <summary>The events reported when <see cref="On"/> is absent.</summary>
    public static readonly IReadOnlyList<NotifyEvent> DefaultEvents = [NotifyEvent.Failure, NotifyEvent.Missed, NotifyEvent.Lost];

    /// <summary>Which events send a message; <see cref="DefaultEvents"/> when absent.</summary>
    public IReadOnlyList<NotifyEvent>? On { get; init; }

    /// <summary>Overrides the webhook's default channel.</summary>
    public string? Channel { get; init; }

    /// <summary><see cref="On"/> or <see cref="DefaultEvents"/>.</summary>
    [JsonIgnore]
    public IReadOnlyList<NotifyEvent> EffectiveEvents => On ?? DefaultEvents;
}

/// <summary>DataDog settings of a task.</summary>
public sealed record DatadogNotify
{
    /// <summary>Tags added to every metric of this task (<c>team:infra</c>, <c>critical</c>).</summary>
    public IReadOnlyList<string>? Tags { get; init; }
}
