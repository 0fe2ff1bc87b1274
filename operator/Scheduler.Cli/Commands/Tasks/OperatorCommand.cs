using System.CommandLine;
using Dtask.Consul.Configuration;
using Dtask.Core.Durations;
using Dtask.Operator.Hosting;
using Dtask.Operator.Sources.Directory;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Dtask.Cli.Commands.Tasks;

/// <summary>
/// <c>dtask operator --source dir:PATH [--resync 5m] [--lease-key KEY] [--prefix dtask/] [--consul ADDR]</c>:
/// reconciles a directory of manifests into Consul until stopped (SIGTERM, Ctrl-C); replicas elect a leader with a
/// Consul lock. <c>--source kubernetes</c> is recognised but not part of this build (exit 2).
/// </summary>
internal static class OperatorCommand
{
    public static Command Create()
    {
        var source = new Option<string>("--source")
        {
            Description = "Where manifests come from: dir:PATH (a directory, e.g. a GitOps checkout) or kubernetes.",
            Required = true,
        };
        var resync = new Option<string>("--resync")
        {
            Description = "A full reconcile at least this often (a duration such as 5m, 30s).",
            DefaultValueFactory = _ => "5m",
        };
        var leaseKey = new Option<string?>("--lease-key")
        {
            Description = "The Consul key of the leader lock (default: <prefix>leader/operator/dir).",
        };
        var logLevel = new Option<LogLevel>("--log-level")
        {
            Description = "The least level logged (Trace, Debug, Information, Warning, Error).",
            DefaultValueFactory = _ => LogLevel.Information,
        };
        var consul = new ConsulConnection();
        var command = new Command("operator", "Reconcile ScheduledTask manifests into Consul, continuously, with leader election among replicas.")
        {
            source,
            resync,
            leaseKey,
            logLevel,
        };
        consul.AddTo(command);
        command.SetAction(async (parseResult, cancellationToken) =>
        {
            var error = parseResult.InvocationConfiguration.Error;
            var sourceText = parseResult.GetRequiredValue(source);
            if (sourceText == "kubernetes")
            {
                error.WriteLine("dtask operator: the kubernetes source is not available in this build; use --source dir:PATH");
                return Program.UsageError;
            }

            if (!sourceText.StartsWith("dir:", StringComparison.Ordinal) || sourceText.Length == 4)
            {
                error.WriteLine($"dtask operator: --source '{sourceText}' is not dir:PATH or kubernetes");
                return Program.UsageError;
            }

            if (!GoDuration.TryParse(parseResult.GetValue(resync), out var period, out var durationError))
            {
                error.WriteLine($"dtask operator: --resync: {durationError}");
                return Program.UsageError;
            }

            var options = new DirectorySourceOptions(sourceText[4..]) { Resync = period, LockKey = parseResult.GetValue(leaseKey) };
            if (options.Problems() is { Count: > 0 } problems)
            {
                foreach (var problem in problems)
                {
                    error.WriteLine($"dtask operator: {problem}");
                }

                return Program.UsageError;
            }

            if (!Directory.Exists(options.FullPath))
            {
                error.WriteLine($"dtask operator: {options.FullPath}: no such directory");
                return Program.UsageError;
            }

            ConsulClientOptions consulOptions;
            try
            {
                consulOptions = consul.ClientOptions(parseResult);
            }
            catch (ConsulConfigurationException e)
            {
                error.WriteLine($"dtask operator: {e.Message}");
                return Program.UsageError;
            }

            using var host = OperatorHost.BuildDirectoryOperator(consulOptions, consul.Layout(parseResult), options, parseResult.GetValue(logLevel));
            await host.RunAsync(cancellationToken).ConfigureAwait(false);
            return Program.Success;
        });
        return command;
    }
}
