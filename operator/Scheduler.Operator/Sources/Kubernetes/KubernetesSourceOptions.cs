using Dtask.Core.Validation;

namespace Dtask.Operator.Sources.Kubernetes;

/// <summary>How the Kubernetes source runs: what it watches, how its replicas elect a leader, and its periods.</summary>
public sealed record KubernetesSourceOptions
{
    /// <summary>Signs every task spec written (executors with <c>--trusted-keys</c> run only verified specs); none: unsigned.</summary>
    public Dtask.Core.Manifests.SpecSigner? Signer { get; init; }

    /// <summary>
    /// Resolve <c>env[].valueFrom.secretKeyRef</c> by reading the Secret (<c>--resolve-secrets</c>; needs <c>get</c> on
    /// secrets) and write its value into the task's spec in Consul. When false such a task is refused (Ready=False, the
    /// field named) and nothing is written.
    /// </summary>
    public bool ResolveSecrets { get; init; }

    /// <summary>The namespace whose <c>ScheduledTask</c>s are reconciled; null for every namespace.</summary>
    public string? Namespace { get; init; }

    /// <summary>The name of the <c>coordination.k8s.io</c> Lease the replicas elect a leader with.</summary>
    public string LeaseName { get; init; } = "dtask-operator";

    /// <summary>The namespace of the Lease (the operator's own: <c>POD_NAMESPACE</c>).</summary>
    public string LeaseNamespace { get; init; } = "default";

    /// <summary>This replica's name in the Lease (<c>POD_NAME</c>, else the host name).</summary>
    public string Identity { get; init; } = Environment.MachineName;

    /// <summary>How long a Lease holds without renewal before another replica may take it.</summary>
    public TimeSpan LeaseDuration { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>How long the leader keeps trying to renew before it gives up leading (shorter than <see cref="LeaseDuration"/>).</summary>
    public TimeSpan RenewDeadline { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How often the Lease is tried (by a candidate) and renewed (by the leader).</summary>
    public TimeSpan RetryPeriod { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Every object is reconciled at least this often (its status's <c>nextScheduleTime</c> included).</summary>
    public TimeSpan Resync { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>The server-side timeout of one watch request; the watch is then resumed from its last resource version.</summary>
    public TimeSpan WatchTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>The first delay after a failed list or watch; doubled on each failure in a row, up to <see cref="MaxBackoff"/>.</summary>
    public TimeSpan InitialBackoff { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>The longest delay after failed lists, watches or reconciles.</summary>
    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>How long one Consul write of the leader may take (<see cref="LeaseFence.WriteTimeoutFor"/>).</summary>
    public TimeSpan WriteTimeout(TimeSpan consulRequestTimeout) => LeaseFence.WriteTimeoutFor(consulRequestTimeout, LeaseDuration);

    /// <summary>
    /// Why the leader could not write between two renewals with this Consul request timeout (the fence's margin
    /// leaves less than the retry period after a renewal), or null.
    /// </summary>
    public string? WriteWindowProblem(TimeSpan consulRequestTimeout)
    {
        var window = LeaseDuration - LeaseFence.MarginFor(WriteTimeout(consulRequestTimeout), LeaseDuration);
        return window > RetryPeriod
            ? null
            : $"the retry period ({RetryPeriod.TotalSeconds:0.#} s) must be shorter than the time the leader may write after a renewal " +
              $"({window.TotalSeconds:0.#} s: the lease duration less the write timeout and {LeaseFence.ClockRateAllowance:P0} of itself)";
    }

    /// <summary>Problems of these options, for a refusal at start; empty when usable.</summary>
    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        if (Namespace is not null && KubernetesNames.CheckDnsLabel(Namespace) is { } nsError)
        {
            problems.Add($"--namespace: '{Namespace}' {nsError}");
        }

        if (KubernetesNames.CheckDnsLabel(LeaseNamespace) is { } leaseNsError)
        {
            problems.Add($"--lease-namespace: '{LeaseNamespace}' {leaseNsError}");
        }

        if (string.IsNullOrWhiteSpace(LeaseName))
        {
            problems.Add("--lease-name must not be empty");
        }

        if (string.IsNullOrWhiteSpace(Identity))
        {
            problems.Add("the leader election identity (POD_NAME or the host name) must not be empty");
        }

        if (RetryPeriod <= TimeSpan.Zero || RenewDeadline <= RetryPeriod || LeaseDuration <= RenewDeadline)
        {
            problems.Add("leader election needs 0 < retry period < renew deadline < lease duration");
        }

        if (Resync <= TimeSpan.Zero)
        {
            problems.Add("--resync must be a positive duration");
        }

        if (WatchTimeout < TimeSpan.FromSeconds(1))
        {
            problems.Add("the watch timeout must be at least 1 s");
        }

        if (InitialBackoff <= TimeSpan.Zero || MaxBackoff < InitialBackoff)
        {
            problems.Add("backoff needs 0 < initial backoff <= maximum backoff");
        }

        return problems;
    }
}
