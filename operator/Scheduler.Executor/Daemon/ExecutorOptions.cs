using Dtask.Core.State;
using Dtask.Core.Validation;
using Dtask.Executor.Processes;
using Microsoft.Extensions.Options;

namespace Dtask.Executor.Daemon;

/// <summary>The settings of <c>dtask executor</c>: flags, else <c>DTASK_*</c> variables, else these defaults.</summary>
public sealed record ExecutorOptions
{
    /// <summary>The default of <see cref="SkewLimit"/>.</summary>
    public static readonly TimeSpan DefaultSkewLimit = TimeSpan.FromSeconds(2);

    /// <summary>The default of <see cref="ShutdownGrace"/>.</summary>
    public static readonly TimeSpan DefaultShutdownGrace = TimeSpan.FromSeconds(90);

    /// <summary>The default of <see cref="SessionTtl"/>.</summary>
    public static readonly TimeSpan DefaultSessionTtl = TimeSpan.FromSeconds(15);

    /// <summary>
    /// The default of <see cref="TerminationGrace"/>: 4 s, so that it plus <see cref="ChildWatchdog.KillWait"/> fits in
    /// half of the smallest TTL Consul accepts (10 s), as <see cref="ExecutorOptionsValidator"/> requires.
    /// </summary>
    public static readonly TimeSpan DefaultTerminationGrace = TimeSpan.FromSeconds(4);

    /// <summary>The default of <see cref="RankDelay"/>.</summary>
    public static readonly TimeSpan DefaultRankDelay = TimeSpan.FromMilliseconds(150);

    /// <summary>The default of <see cref="Contenders"/>.</summary>
    public const int DefaultContenders = 3;

    /// <summary>The default of <see cref="MaxConsulRequests"/>.</summary>
    public const int DefaultMaxConsulRequests = 32;

    /// <summary>This node's name: a DNS-1123 subdomain, the key under <c>nodes/</c> and <c>DTASK_NODE</c>.</summary>
    public string Node { get; init; } = "";

    /// <summary>The labels this node advertises; tasks select nodes with <c>nodeSelector</c>.</summary>
    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();

    /// <summary>
    /// The public keys task specs must be signed with (<c>--trusted-keys</c>); null: specs are run unsigned. A spec
    /// whose signature does not verify is refused and the task's last verified spec keeps running.
    /// </summary>
    public Core.Manifests.TrustedSpecKeys? TrustedKeys { get; init; }

    /// <summary>The KV prefix of dtask's keys.</summary>
    public string Prefix { get; init; } = KvLayout.DefaultPrefix;

    /// <summary>Where <c>/metrics</c> listens (Prometheus text format); not served when null.</summary>
    public Metrics.MetricsEndpoint? MetricsListen { get; init; }

    /// <summary>The largest difference allowed between this clock and the Consul agent's before claims stop.</summary>
    public TimeSpan SkewLimit { get; init; } = DefaultSkewLimit;

    /// <summary>On SIGTERM, how long running children may go on before they are stopped.</summary>
    public TimeSpan ShutdownGrace { get; init; } = DefaultShutdownGrace;

    /// <summary>
    /// The Consul catalog node the executor's sessions are created on (<c>--session-node</c>); the node of the Consul
    /// agent that answers when null. ACL rules on sessions are keyed by this node: with one per executor, an executor's
    /// token may write its own sessions only (deploy/acl/executor.hcl).
    /// </summary>
    public string? SessionNode { get; init; }

    /// <summary>
    /// How long a missed marker waits for the clock guard to allow writes (a node just started, or just set right) before
    /// it is left to the other executors: three clock-stamp intervals.
    /// </summary>
    public TimeSpan MarkerGuardWait { get; init; } = ClockSkewGuard.StampMaxAge;

    /// <summary>The TTL of the executor's sessions (Consul accepts 10 s to 24 h).</summary>
    public TimeSpan SessionTtl { get; init; } = DefaultSessionTtl;

    /// <summary>
    /// δ: the k-th ranked node for a slot waits k·δ before it tries to claim (less when the slot's window is short: see
    /// <see cref="SlotTurn"/>).
    /// </summary>
    public TimeSpan RankDelay { get; init; } = DefaultRankDelay;

    /// <summary>
    /// K: how many ranks contend for a slot at k·δ; the other nodes look once, at K·δ, and claim only a slot that is still
    /// unclaimed then (<see cref="SlotTurn"/>).
    /// </summary>
    public int Contenders { get; init; } = DefaultContenders;

    /// <summary>
    /// The most Consul requests of task work (plans, claims, finishes, markers) in flight at once; the rest queue in the
    /// executor. Session renewal, registration and watches use their own connections and never wait behind them.
    /// </summary>
    public int MaxConsulRequests { get; init; } = DefaultMaxConsulRequests;

    /// <summary>Between SIGTERM and SIGKILL when a child's process group is stopped.</summary>
    public TimeSpan TerminationGrace { get; init; } = DefaultTerminationGrace;

    /// <summary>
    /// How long without a successful renewal the claim session still counts as live: the session TTL minus the time a
    /// stop takes (<see cref="TerminationGrace"/> + <see cref="ChildWatchdog.KillWait"/>). When it passes, the executor
    /// and its watchdog stop the children, and they are gone before Consul may expire the session (never before its
    /// TTL) and free the locks.
    /// </summary>
    public TimeSpan RenewalDeadline => SessionTtl - StopBudget;

    /// <summary>How long stopping a child may take: <see cref="TerminationGrace"/> + <see cref="ChildWatchdog.KillWait"/>.</summary>
    public TimeSpan StopBudget => TerminationGrace + ChildWatchdog.KillWait;

    /// <summary>The dtask version advertised in the node record.</summary>
    public string Version { get; init; } = typeof(ExecutorOptions).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";

    /// <summary>Parses <c>k=v,k2=v2</c> (empty: no labels).</summary>
    /// <exception cref="FormatException">An item is not <c>key=value</c>.</exception>
    public static IReadOnlyDictionary<string, string> ParseLabels(string? text)
    {
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var item in (text ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var equals = item.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0)
            {
                throw new FormatException($"label '{item}' is not key=value");
            }

            labels[item[..equals].Trim()] = item[(equals + 1)..].Trim();
        }

        return labels;
    }

    /// <summary>The default node name: the host name, lower-cased.</summary>
    public static string DefaultNode() => Environment.MachineName.ToLowerInvariant();
}

/// <summary>Checks <see cref="ExecutorOptions"/> when the host starts; each failure names the flag and says why.</summary>
public sealed class ExecutorOptionsValidator : IValidateOptions<ExecutorOptions>
{
    private const int MaxNodeLength = 253;

    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, ExecutorOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        if (CheckNode(options.Node) is { } node)
        {
            failures.Add($"--node: {node}");
        }

        foreach (var (key, value) in options.Labels)
        {
            if (KubernetesNames.CheckLabelKey(key) is { } badKey)
            {
                failures.Add($"--labels: {badKey}");
            }

            if (KubernetesNames.CheckLabelValue(value) is { } badValue)
            {
                failures.Add($"--labels: {badValue}");
            }
        }

        if (options.Prefix.Contains("//", StringComparison.Ordinal) || options.Prefix.StartsWith('/'))
        {
            failures.Add($"--prefix '{options.Prefix}' must not start with '/' or contain '//'");
        }

        Positive(failures, "--skew-limit", options.SkewLimit);
        Positive(failures, "--shutdown-grace", options.ShutdownGrace);
        Positive(failures, "--termination-grace", options.TerminationGrace);
        if (options.RankDelay < TimeSpan.Zero)
        {
            failures.Add("--rank-delay must not be negative");
        }

        if (options.Contenders < 1)
        {
            failures.Add("--contenders must be at least 1");
        }

        if (options.MaxConsulRequests < 1)
        {
            failures.Add("--max-consul-requests must be at least 1");
        }

        if (options.SessionTtl < TimeSpan.FromSeconds(10) || options.SessionTtl > TimeSpan.FromHours(24))
        {
            failures.Add($"--session-ttl {options.SessionTtl.TotalSeconds:0.#}s is outside what Consul accepts (10s to 24h)");
        }
        else if (options.TerminationGrace > TimeSpan.Zero && options.RenewalDeadline < options.SessionTtl / 2)
        {
            failures.Add(StopBudgetProblem(options));
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    /// <summary>Null when <paramref name="node"/> is a DNS-1123 subdomain, else why not.</summary>
    public static string? CheckNode(string node)
    {
        ArgumentNullException.ThrowIfNull(node);
        if (node.Length == 0)
        {
            return "the node name is empty; give one with --node or DTASK_NODE";
        }

        if (node.Length > MaxNodeLength)
        {
            return $"the node name is {node.Length} characters; at most {MaxNodeLength} are allowed";
        }

        return node.Split('.').All(part => KubernetesNames.CheckDnsLabel(part) is null)
            ? null
            : $"'{node}' is not a DNS-1123 subdomain: lower-case letters, digits, '-' and '.', each dot-separated part starting and ending with a letter or digit (set --node when the host name is not one)";
    }

    /// <summary>
    /// Why the stop budget does not fit: a holder whose renewals stop must have stopped its child before Consul can free
    /// the lock (the TTL after the last renewal), and renewing needs the other half of the TTL (a renewal every third of
    /// it, and a retry).
    /// </summary>
    private static string StopBudgetProblem(ExecutorOptions options)
    {
        static string S(TimeSpan t) => $"{t.TotalSeconds:0.###}s";
        var most = options.SessionTtl / 2 - ChildWatchdog.KillWait;
        var least = 2 * options.StopBudget;
        return $"--termination-grace {S(options.TerminationGrace)} plus the {S(ChildWatchdog.KillWait)} kill wait ({S(options.StopBudget)}) " +
            $"must fit in half of --session-ttl {S(options.SessionTtl)} ({S(options.SessionTtl / 2)}): a holder that stops renewing must have " +
            $"stopped its child before Consul can free the lock, and renewing needs the other half; give --termination-grace at most {S(most)} " +
            $"or --session-ttl at least {S(least)}";
    }

    private static void Positive(List<string> failures, string flag, TimeSpan value)
    {
        if (value <= TimeSpan.Zero)
        {
            failures.Add($"{flag} must be positive");
        }
    }
}
