using System.CommandLine;
using Dtask.Consul.Configuration;
using Dtask.Core.Durations;
using Dtask.Operator.Health;
using Dtask.Operator.Hosting;
using Dtask.Operator.Sources.Directory;
using Dtask.Operator.Sources.Kubernetes;
using k8s;
using k8s.Exceptions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Dtask.Cli.Commands.Tasks;

/// <summary>
/// <c>dtask operator --source dir:PATH|kubernetes [...]</c>: reconciles ScheduledTask manifests into Consul until
/// stopped (SIGTERM, Ctrl-C). Replicas elect a leader: with a Consul lock for a directory, with a Lease in
/// Kubernetes. <c>--health-port</c> serves <c>/healthz</c>, <c>/readyz</c> and <c>/metrics</c>.
/// </summary>
internal static class OperatorCommand
{
    public static Command Create()
    {
        var source = new Option<string>("--source")
        {
            Description = "Where manifests come from: dir:PATH (a directory, e.g. a GitOps checkout) or kubernetes (ScheduledTask objects).",
            Required = true,
        };
        var resync = new Option<string>("--resync")
        {
            Description = "Everything is reconciled at least this often (a duration such as 5m, 30s).",
            DefaultValueFactory = _ => "5m",
        };
        var leaseKey = new Option<string?>("--lease-key")
        {
            Description = "dir: the Consul key of the leader lock (default: <prefix>leader/operator/dir).",
        };
        var sessionNode = new Option<string?>("--session-node")
        {
            Description = "dir: create the leader lock's Consul session on this Consul catalog node (it must be registered) instead of on the node of the agent that answers; the operator's ACL policy then needs session write on this node only.",
        };
        var watchNamespace = new Option<string?>("--namespace")
        {
            Description = "kubernetes: reconcile the ScheduledTasks of this namespace only (default: every namespace).",
        };
        var resolveSecrets = new Option<bool>("--resolve-secrets")
        {
            Description = "kubernetes: resolve env[].valueFrom.secretKeyRef by reading the Secret (needs get on secrets) and write its value into the task's spec in Consul, where every executor can read it; without it such tasks are refused.",
        };
        var kubeconfig = new Option<string?>("--kubeconfig")
        {
            Description = "kubernetes: the kubeconfig file (default: the pod's service account in a cluster, else KUBECONFIG or ~/.kube/config).",
        };
        var leaseName = new Option<string>("--lease-name")
        {
            Description = "kubernetes: the Lease the replicas elect a leader with.",
            DefaultValueFactory = _ => "dtask-operator",
        };
        var leaseNamespace = new Option<string?>("--lease-namespace")
        {
            Description = "kubernetes: the namespace of the Lease (default: POD_NAMESPACE, else the service account's namespace, else default).",
        };
        var healthPort = new Option<int?>("--health-port")
        {
            Description = "Serve GET /healthz, /readyz and /metrics (Prometheus) on this port (none by default).",
        };
        var healthAddress = new Option<string>("--health-address")
        {
            Description = "The address the health endpoints bind.",
            DefaultValueFactory = _ => "0.0.0.0",
        };
        var logLevel = new Option<LogLevel>("--log-level")
        {
            Description = "The least level logged (Trace, Debug, Information, Warning, Error).",
            DefaultValueFactory = _ => LogLevel.Information,
        };
        var signingKey = SigningKeyOption.Create();
        var uiListen = new Option<string?>("--ui-listen")
        {
            Description = "Also serve the dtask ui page on HOST:PORT (as `dtask ui --listen`; none by default).",
        };
        var uiAllowActions = new Option<bool>("--ui-allow-actions") { Description = "With --ui-listen: offer trigger, suspend and resume in the page (as `dtask ui --allow-actions`)." };
        var uiBearer = new Option<string?>("--ui-bearer-token-file") { Description = "With --ui-listen: require this file's token on every request (as `dtask ui --bearer-token-file`)." };
        var consul = new ConsulConnection();
        var command = new Command("operator", "Reconcile ScheduledTask manifests into Consul, continuously, with leader election among replicas.")
        {
            source,
            resync,
            leaseKey,
            sessionNode,
            watchNamespace,
            resolveSecrets,
            kubeconfig,
            leaseName,
            leaseNamespace,
            healthPort,
            healthAddress,
            logLevel,
            signingKey,
            uiListen,
            uiAllowActions,
            uiBearer,
        };
        consul.AddTo(command);
        command.SetAction(async (parseResult, cancellationToken) =>
        {
            var error = parseResult.InvocationConfiguration.Error;
            int Usage(IEnumerable<string> problems)
            {
                foreach (var problem in problems)
                {
                    error.WriteLine($"dtask operator: {problem}");
                }

                return Program.UsageError;
            }

            var sourceText = parseResult.GetRequiredValue(source);
            var kubernetes = sourceText == "kubernetes";
            if (!kubernetes && (!sourceText.StartsWith("dir:", StringComparison.Ordinal) || sourceText.Length == 4))
            {
                return Usage([$"--source '{sourceText}' is not dir:PATH or kubernetes"]);
            }

            if (!GoDuration.TryParse(parseResult.GetValue(resync), out var period, out var durationError))
            {
                return Usage([$"--resync: {durationError}"]);
            }

            var misplaced = kubernetes
                ? new[] { leaseKey, sessionNode }.Where(o => parseResult.GetResult(o) is { Implicit: false }).Select(o => $"{o.Name} applies to --source dir:PATH only")
                : new Option[] { watchNamespace, resolveSecrets, kubeconfig, leaseName, leaseNamespace }.Where(o => parseResult.GetResult(o) is { Implicit: false })
                    .Select(o => $"{o.Name} applies to --source kubernetes only");
            if (misplaced.ToList() is { Count: > 0 } wrongPlace)
            {
                return Usage(wrongPlace);
            }

            if (!SigningKeyOption.TryRead("operator", parseResult, signingKey, error, out var signer))
            {
                return Program.UsageError;
            }

            HealthOptions? health = null;
            if (parseResult.GetValue(healthPort) is { } port)
            {
                health = new HealthOptions(parseResult.GetValue(healthAddress) ?? "0.0.0.0", port);
                if (health.Problems() is { Count: > 0 } healthProblems)
                {
                    return Usage(healthProblems);
                }
            }

            ConsulClientOptions consulOptions;
            try
            {
                consulOptions = consul.ClientOptions(parseResult);
                using var probe = new Dtask.Consul.ConsulClient(consulOptions); // Reads the CA and key files now: a bad one is a usage error, not a host failure.
            }
            catch (ConsulConfigurationException e)
            {
                return Usage([e.Message]);
            }

            IHost host;
            if (kubernetes)
            {
                var environment = (Func<string, string?>)Environment.GetEnvironmentVariable;
                var options = new KubernetesSourceOptions
                {
                    Signer = signer,
                    Namespace = parseResult.GetValue(watchNamespace),
                    LeaseName = parseResult.GetValue(leaseName) ?? "dtask-operator",
                    LeaseNamespace = parseResult.GetValue(leaseNamespace) ?? KubernetesConnection.LeaseNamespace(environment),
                    Identity = KubernetesConnection.Identity(environment),
                    Resync = period,
                    ResolveSecrets = parseResult.GetValue(resolveSecrets),
                };
                if (options.Problems() is { Count: > 0 } problems)
                {
                    return Usage(problems);
                }

                if (options.WriteWindowProblem(consulOptions.RequestTimeout) is { } window)
                {
                    return Usage([window]);
                }

                KubernetesClientConfiguration configuration;
                try
                {
                    configuration = KubernetesConnection.Resolve(parseResult.GetValue(kubeconfig), environment);
                }
                catch (KubeConfigException e)
                {
                    return Usage([$"no Kubernetes configuration: {e.Message}"]);
                }

                host = OperatorHost.BuildKubernetesOperator(consulOptions, consul.Layout(parseResult), configuration, options, parseResult.GetValue(logLevel), health);
            }
            else
            {
                var options = new DirectorySourceOptions(sourceText[4..]) { Resync = period, LockKey = parseResult.GetValue(leaseKey), Signer = signer, SessionNode = parseResult.GetValue(sessionNode) is { Length: > 0 } onNode ? onNode : null };
                if (options.Problems() is { Count: > 0 } problems)
                {
                    return Usage(problems);
                }

                if (!Directory.Exists(options.FullPath))
                {
                    return Usage([$"{options.FullPath}: no such directory"]);
                }

                host = OperatorHost.BuildDirectoryOperator(consulOptions, consul.Layout(parseResult), options, parseResult.GetValue(logLevel), health);
            }

            Ui.UiServer? ui = null;
            if (parseResult.GetValue(uiListen) is { } uiAddress)
            {
                if (!Ui.UiCommand.TryOptions("operator", uiAddress, parseResult.GetValue(uiAllowActions), parseResult.GetValue(uiBearer), () => consulOptions,
                        consul.Layout(parseResult), error, out var uiOptions))
                {
                    host.Dispose();
                    return Program.UsageError;
                }

                ui = await Ui.UiServer.StartAsync(uiOptions!, cancellationToken).ConfigureAwait(false);
                parseResult.InvocationConfiguration.Output.WriteLine($"dtask ui: serving {ui.Address} (actions {(uiOptions!.AllowActions ? "on" : "off")})");
            }

            using (host)
            {
                try
                {
                    await host.RunAsync(cancellationToken).ConfigureAwait(false);
                }
                finally
                {
                    if (ui is not null)
                    {
                        await ui.DisposeAsync().ConfigureAwait(false);
                    }
                }
            }

            return Program.Success;
        });
        return command;
    }
}
