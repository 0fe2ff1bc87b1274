using System.CommandLine;
using Dtask.Consul;
using Dtask.Consul.Configuration;
using Dtask.Consul.Errors;
using Dtask.Core.Durations;
using Dtask.Core.State;
using Dtask.Executor.Daemon;
using Dtask.Executor.Logging;
using Dtask.Executor.Notifications;
using Dtask.Executor.Processes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Dtask.Cli.Commands;

/// <summary>
/// <c>dtask executor [--node NAME] [--labels k=v,...] [--prefix dtask/] [--consul ADDR] [--skew-limit 2s]
/// [--shutdown-grace 90s] [--session-ttl 15s] [--rank-delay 150ms] [--contenders 3] [--max-consul-requests 32] [--termination-grace 4s] [--metrics-listen HOST:PORT]</c>: the per-node daemon.
/// Each flag falls back to a <c>DTASK_*</c> variable (<c>DTASK_NODE</c>, <c>DTASK_LABELS</c>, <c>DTASK_PREFIX</c>,
/// <c>DTASK_SKEW_LIMIT</c>, <c>DTASK_SHUTDOWN_GRACE</c>, <c>DTASK_SESSION_TTL</c>, <c>DTASK_RANK_DELAY</c>,
/// <c>DTASK_TERMINATION_GRACE</c>, <c>DTASK_METRICS_LISTEN</c>); Consul from the standard <c>CONSUL_*</c> variables.
/// </summary>
/// <remarks>
/// Exit codes: 0 after a clean shutdown (SIGTERM, SIGINT); 1 when the node name is registered by another live executor
/// or the executor failed; 64 for a bad command line; 77 when Consul denies permission; 78 for invalid settings.
/// </remarks>
internal static class ExecutorCommand
{
    public const string Name = "executor";
    public const int NodeTakenExitCode = 1;

    /// <summary>True when the parse result is for this command.</summary>
    public static bool Owns(ParseResult parseResult) => parseResult.CommandResult.Command.Name == Name;

    public static Command Create()
    {
        var node = new Option<string?>("--node") { Description = "This node's name, a DNS-1123 subdomain (env DTASK_NODE; default: the host name, lower-cased)." };
        var labels = new Option<string?>("--labels") { Description = "Labels tasks select with nodeSelector: k=v,k2=v2 (env DTASK_LABELS)." };
        var prefix = RunCommand.PrefixOption();
        var consul = RunCommand.ConsulOption();
        var skew = new Option<string?>("--skew-limit") { Description = "Claim and record nothing while this clock differs from its references (the Consul agent's, the other executors') by more (env DTASK_SKEW_LIMIT; default 2s)." };
        var grace = new Option<string?>("--shutdown-grace") { Description = "On SIGTERM, let running children finish this long before stopping them (env DTASK_SHUTDOWN_GRACE; default 90s)." };
        var ttl = new Option<string?>("--session-ttl") { Description = "TTL of the executor's Consul sessions, 10s to 24h (env DTASK_SESSION_TTL; default 15s)." };
        var rankDelay = new Option<string?>("--rank-delay") { Description = "δ: the k-th ranked node waits k·δ before claiming a slot (env DTASK_RANK_DELAY; default 150ms)." };
        var contenders = new Option<string?>("--contenders") { Description = "K: how many ranks contend for a slot at k·δ; the others only back them up (env DTASK_CONTENDERS; default 3)." };
        var maxRequests = new Option<string?>("--max-consul-requests") { Description = "The most Consul requests of task work in flight at once (env DTASK_MAX_CONSUL_REQUESTS; default 32)." };
        var termination = new Option<string?>("--termination-grace") { Description = "Between SIGTERM and SIGKILL when a child is stopped; with the 1s kill wait it must fit in half of --session-ttl (env DTASK_TERMINATION_GRACE; default 4s)." };
        var metrics = new Option<string?>("--metrics-listen") { Description = "Serve Prometheus metrics at http://HOST:PORT/metrics, e.g. 0.0.0.0:9464 (env DTASK_METRICS_LISTEN; default: not served)." };
        var labelsFromConsul = new Option<bool>("--labels-from-consul") { Description = "Take this node's labels from the key <prefix>node-labels/<node> (k=v,k2=v2), which an administrator writes and the node's token can only read, instead of --labels (env DTASK_LABELS_FROM_CONSUL=true). Read at start." };
        var sessionNode = new Option<string?>("--session-node") { Description = "Create this executor's Consul sessions on this Consul catalog node, which must be registered (e.g. by Terraform's consul_node), instead of on the node of the agent that answers; its ACL policy then needs session write on this node only (env DTASK_SESSION_NODE)." };
        var trustedKeys = new Option<string?>("--trusted-keys") { Description = "Run only task specs signed by one of these ECDSA P-256 public keys (PEM files, comma-separated; more than one to rotate keys). A spec that does not verify is refused, logged and shown by dtask describe; the task's last verified spec keeps running (env DTASK_TRUSTED_KEYS)." };
        var command = new Command(Name, "Run the executor daemon: register this node, watch tasks in Consul, fire the slots it wins. Exit: 0 clean shutdown; 1 node name taken or failure; 77 permission denied; 78 invalid settings.")
        {
            node, labels, prefix, consul, skew, grace, ttl, rankDelay, contenders, maxRequests, termination, metrics, trustedKeys, labelsFromConsul, sessionNode,
        };
        command.SetAction(async (parseResult, cancellationToken) =>
        {
            var error = parseResult.InvocationConfiguration.Error;
            string? Value(Option<string?> option, string variable) => parseResult.GetValue(option) is { Length: > 0 } given ? given : Environment.GetEnvironmentVariable(variable);
            ExecutorOptions options;
            try
            {
                options = new ExecutorOptions
                {
                    Node = Value(node, "DTASK_NODE") ?? ExecutorOptions.DefaultNode(),
                    Labels = ExecutorOptions.ParseLabels(Value(labels, "DTASK_LABELS")),
                    Prefix = parseResult.GetValue(prefix) ?? Environment.GetEnvironmentVariable("DTASK_PREFIX") ?? KvLayout.DefaultPrefix,
                    SkewLimit = Duration(Value(skew, "DTASK_SKEW_LIMIT"), "--skew-limit") ?? ExecutorOptions.DefaultSkewLimit,
                    ShutdownGrace = Duration(Value(grace, "DTASK_SHUTDOWN_GRACE"), "--shutdown-grace") ?? ExecutorOptions.DefaultShutdownGrace,
                    SessionTtl = Duration(Value(ttl, "DTASK_SESSION_TTL"), "--session-ttl") ?? ExecutorOptions.DefaultSessionTtl,
                    SessionNode = Value(sessionNode, "DTASK_SESSION_NODE")?.Trim() is { Length: > 0 } onNode ? onNode : null,
                    RankDelay = Duration(Value(rankDelay, "DTASK_RANK_DELAY"), "--rank-delay") ?? ExecutorOptions.DefaultRankDelay,
                    Contenders = Count(Value(contenders, "DTASK_CONTENDERS"), "--contenders") ?? ExecutorOptions.DefaultContenders,
                    MaxConsulRequests = Count(Value(maxRequests, "DTASK_MAX_CONSUL_REQUESTS"), "--max-consul-requests") ?? ExecutorOptions.DefaultMaxConsulRequests,
                    TerminationGrace = Duration(Value(termination, "DTASK_TERMINATION_GRACE"), "--termination-grace") ?? ExecutorOptions.DefaultTerminationGrace,
                    MetricsListen = Value(metrics, "DTASK_METRICS_LISTEN") is { Length: > 0 } listen ? Executor.Metrics.MetricsEndpoint.Parse(listen.Trim()) : null,
                };
                options = options with { Prefix = new KvLayout(options.Prefix).Prefix };
                if (Value(trustedKeys, "DTASK_TRUSTED_KEYS") is { } keyFiles)
                {
                    options = options with { TrustedKeys = Core.Manifests.TrustedSpecKeys.FromPemFiles(keyFiles.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)) };
                }
            }
            catch (FormatException e)
            {
                error.WriteLine($"dtask executor: {e.Message}");
                return RunCommand.ConfigurationExitCode;
            }
            catch (Core.Manifests.SpecKeyException e)
            {
                error.WriteLine($"dtask executor: --trusted-keys: {e.Message}");
                return RunCommand.ConfigurationExitCode;
            }

            var fromConsul = parseResult.GetValue(labelsFromConsul)
                || string.Equals(Environment.GetEnvironmentVariable("DTASK_LABELS_FROM_CONSUL"), "true", StringComparison.OrdinalIgnoreCase);
            if (fromConsul && options.Labels.Count > 0)
            {
                error.WriteLine("dtask executor: --labels-from-consul: the labels come from Consul; give no --labels (or DTASK_LABELS) with it");
                return RunCommand.ConfigurationExitCode;
            }

            return await RunAsync(options, parseResult.GetValue(consul), fromConsul, error, cancellationToken).ConfigureAwait(false);
        });
        return command;
    }

    private static int? Count(string? text, string flag)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return null;
        }

        return int.TryParse(text.Trim(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var count)
            ? count
            : throw new FormatException($"{flag} '{text}' is not a whole number");
    }

    private static TimeSpan? Duration(string? text, string flag)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return null;
        }

        try
        {
            return GoDuration.Parse(text.Trim());
        }
        catch (FormatException)
        {
            throw new FormatException($"{flag} '{text}' is not a duration; write one such as 500ms, 30s or 2m");
        }
    }

    private static async Task<int> RunAsync(ExecutorOptions options, string? consulAddress, bool labelsFromConsul, TextWriter error, CancellationToken cancellationToken)
    {
        ConsulClientOptions consul;
        NotificationOptions notifications;
        LoggingOptions logging;
        try
        {
            var variables = EnvironmentSettings.ProcessVariables();
            consul = RunCommand.ConsulOptions(consulAddress);
            notifications = NotificationOptions.FromEnvironment(new EnvironmentSettings(variables));
            logging = LoggingOptions.FromEnvironment(variables);
        }
        catch (Exception e) when (e is ConsulConfigurationException or FormatException)
        {
            error.WriteLine($"dtask executor: {e.Message}");
            return RunCommand.ConfigurationExitCode;
        }

        if (labelsFromConsul)
        {
            var key = new KvLayout(options.Prefix).NodeLabelsKey(options.Node);
            try
            {
                using var client = new ConsulClient(consul);
                options = options with { Labels = ExecutorOptions.ParseLabels(await ReadLabelsAsync(client, key, error, cancellationToken).ConfigureAwait(false)) };
            }
            catch (ConsulPermissionDeniedException e)
            {
                error.WriteLine($"dtask executor: --labels-from-consul: Consul denied permission: {e.Message} (see deploy/acl/executor.hcl)");
                return RunCommand.NoPermissionExitCode;
            }
            catch (FormatException e)
            {
                error.WriteLine($"dtask executor: --labels-from-consul: the value at '{key}': {e.Message}");
                return RunCommand.ConfigurationExitCode;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return Program.Success;
            }
        }

        if (new ExecutorOptionsValidator().Validate(null, options) is { Failed: true } invalid)
        {
            // Before anything starts: no watchdog, no Consul.
            foreach (var failure in invalid.Failures ?? [])
            {
                error.WriteLine($"dtask executor: {failure}");
            }

            return RunCommand.ConfigurationExitCode;
        }

        await using var logger = ExecutorLogging.Configure(logging).CreateLogger();
        ChildWatchdog watchdog;
        try
        {
            watchdog = ChildWatchdog.Start(options.TerminationGrace);
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            error.WriteLine($"dtask executor: cannot start the child watchdog: {e.Message}");
            return Program.Failure;
        }

        // Orderly unless the host failed unexpectedly: then the watchdog stops whatever children are left, as if the executor had died.
        var orderly = false;
        IHost? host = null;
        // The host's own lifetime handles SIGTERM and SIGINT; RunAsync disposes the host, so its token is taken first.
        var stopping = CancellationToken.None;
        var started = CancellationToken.None;
        try
        {
            host = ExecutorHost.Build(options, consul, notifications, logger, watchdog: watchdog);
            var lifetime = host.Services.GetRequiredService<IHostApplicationLifetime>();
            (stopping, started) = (lifetime.ApplicationStopping, lifetime.ApplicationStarted);
            await host.RunAsync(cancellationToken).ConfigureAwait(false);
            orderly = true;
            return Program.Success;
        }
        catch (OptionsValidationException e)
        {
            foreach (var failure in e.Failures)
            {
                error.WriteLine($"dtask executor: {failure}");
            }

            return RunCommand.ConfigurationExitCode;
        }
        catch (Dtask.Consul.Configuration.ConsulConfigurationException e)
        {
            // Read when the client is built (a CA or key file that cannot be read): configuration, not a crash.
            orderly = true;
            error.WriteLine($"dtask executor: {e.Message}");
            return RunCommand.ConfigurationExitCode;
        }
        catch (NodeNameTakenException e)
        {
            logger.Error("refusing to start: {Problem:l}", e.Message);
            error.WriteLine($"dtask executor: refusing to start: {e.Message}");
            return NodeTakenExitCode;
        }
        catch (ConsulPermissionDeniedException e)
        {
            error.WriteLine($"dtask executor: Consul denied permission: {e.Message} (see deploy/acl/executor.hcl for what an executor's token needs)");
            return RunCommand.NoPermissionExitCode;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested || stopping.IsCancellationRequested)
        {
            // SIGTERM or SIGINT before start-up finished: the host's own lifetime cancels its start, which is a stop.
            orderly = true;
            if (!started.IsCancellationRequested)
            {
                logger.Information("stopped before start-up finished");
            }

            return Program.Success;
        }
        finally
        {
            if (host is IAsyncDisposable disposable)
            {
                await disposable.DisposeAsync().ConfigureAwait(false);
            }
            else
            {
                host?.Dispose();
            }
            if (orderly)
            {
                watchdog.Dispose();
            }
            else
            {
                watchdog.Abandon(options.TerminationGrace + ChildWatchdog.KillWait + TimeSpan.FromSeconds(1));
            }
        }
    }

    /// <summary>The labels text at <paramref name="key"/> ("" when absent), waiting while Consul cannot be reached.</summary>
    private static async Task<string> ReadLabelsAsync(ConsulClient client, string key, TextWriter error, CancellationToken cancellationToken)
    {
        var told = false;
        while (true)
        {
            try
            {
                return (await client.Kv.GetAsync(key, cancellationToken: cancellationToken).ConfigureAwait(false)).Value?.ValueAsString() ?? "";
            }
            catch (ConsulException e) when (e is ConsulUnreachableException or ConsulServerException)
            {
                if (!told)
                {
                    error.WriteLine($"dtask executor: --labels-from-consul: cannot read '{key}' yet: {e.Message}; retrying");
                    told = true;
                }

                await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken).ConfigureAwait(false);
            }
        }
    }
}
