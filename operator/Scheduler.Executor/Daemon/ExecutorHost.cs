using Dtask.Consul;
using Dtask.Consul.Configuration;
using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Executor.Claims;
using Dtask.Executor.Firing;
using Dtask.Executor.Ledger;
using Dtask.Executor.Metrics;
using Dtask.Executor.Notifications;
using Dtask.Executor.Processes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Systemd;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Dtask.Executor.Daemon;

/// <summary>
/// Builds the <c>dtask executor</c> host: Generic Host, systemd integration (<c>Type=notify</c>: READY once every hosted
/// service has started, i.e. the node is registered and its tasks are loaded), options validated at start, and the
/// hosted services in start order: <see cref="MembershipService"/>, <see cref="KvWatchService"/>,
/// <see cref="FiringService"/> (stopped in reverse: firing drains first, the registration goes last).
/// </summary>
public static class ExecutorHost
{
    /// <summary>The host of an executor with these settings.</summary>
    /// <param name="options">The executor's settings (validated when the host starts).</param>
    /// <param name="consul">How to reach Consul.</param>
    /// <param name="notifications">Slack and DataDog.</param>
    /// <param name="logger">The Serilog logger (the caller disposes it after the host).</param>
    /// <param name="time">The clock; the system's when null.</param>
    /// <param name="watchdog">Stops the children if the executor dies (see <see cref="ChildWatchdog"/>); none when null.</param>
    public static IHost Build(ExecutorOptions options, ConsulClientOptions consul, NotificationOptions notifications, Serilog.ILogger logger, TimeProvider? time = null,
        ChildWatchdog? watchdog = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(consul);
        ArgumentNullException.ThrowIfNull(notifications);
        ArgumentNullException.ThrowIfNull(logger);
        time ??= TimeProvider.System;
        if (watchdog is not null)
        {
            watchdog.Restarted += what => logger.Warning("the child watchdog {What:l}", what);
        }

        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders();
        builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = options.ShutdownGrace + options.TerminationGrace + TimeSpan.FromSeconds(30));
        builder.Services.AddSystemd();
        if (!SystemdHelpers.IsSystemdService() && !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("NOTIFY_SOCKET")))
        {
            // Not started by systemd itself, but by a supervisor that speaks its notify protocol: notify it all the same.
            builder.Services.AddSingleton<ISystemdNotifier, SystemdNotifier>();
            builder.Services.AddSingleton<IHostLifetime, SystemdLifetime>();
        }

        builder.Services.AddSingleton<IValidateOptions<ExecutorOptions>, ExecutorOptionsValidator>();
        builder.Services.AddSingleton<IOptionsFactory<ExecutorOptions>>(sp => new FixedOptionsFactory(options, sp.GetServices<IValidateOptions<ExecutorOptions>>()));
        builder.Services.AddOptions<ExecutorOptions>().ValidateOnStart();
        builder.Services.AddSingleton(sp => sp.GetRequiredService<IOptions<ExecutorOptions>>().Value);

        builder.Services.AddSingleton(time);
        builder.Services.AddSingleton(logger);
        builder.Services.AddSingleton(new KvLayout(options.Prefix));
        builder.Services.AddSingleton(_ => new ExecutorInstruments(time));
        builder.Services.AddSingleton(sp => Counted(new ConsulClient(consul, time), sp));
        builder.Services.AddSingleton(sp => new FiringClient(Counted(new ConsulClient(consul with { MaxConcurrentRequests = options.MaxConsulRequests }, time), sp)));
        builder.Services.AddSingleton(sp => new MembershipClient(Counted(new ConsulClient(consul, time), sp)));
        builder.Services.AddSingleton<IRunNotifier>(sp => RunNotifiers.Create(notifications, logger, time, instruments: sp.GetRequiredService<ExecutorInstruments>()));
        builder.Services.AddSingleton(sp => new ClockSkewGuard(sp.GetRequiredService<ExecutorOptions>().SkewLimit, time, logger, sp.GetRequiredService<ExecutorOptions>().Node));
        builder.Services.AddSingleton(sp => new ChildRunner(new ChildRunnerOptions { TerminationGrace = sp.GetRequiredService<ExecutorOptions>().TerminationGrace, Watchdog = watchdog }, time));
        builder.Services.AddSingleton<ClusterView>();
        builder.Services.AddSingleton<RunningRuns>();
        builder.Services.AddSingleton<FiringStats>();
        builder.Services.AddSingleton(sp => new NodeMembership(sp.GetRequiredService<MembershipClient>().Client, sp.GetRequiredService<ITaskLedger>(), sp.GetRequiredService<KvLayout>(),
            sp.GetRequiredService<ExecutorOptions>(), sp.GetRequiredService<ClockSkewGuard>(), time, logger, watchdog is null ? null : watchdog.Lease));
        builder.Services.AddSingleton<ITaskLedger>(sp => new ConsulTaskLedger(sp.GetRequiredService<FiringClient>().Client, sp.GetRequiredService<KvLayout>(), time,
            watches: sp.GetRequiredService<ConsulClient>(), membership: sp.GetRequiredService<MembershipClient>().Client, batchClaims: true));
        builder.Services.AddSingleton<IFleetLedger>(sp => sp.GetRequiredService<ITaskLedger>());
        builder.Services.AddSingleton(sp => new SlotContender(sp.GetRequiredService<ITaskLedger>(), sp.GetRequiredService<NodeMembership>(), sp.GetRequiredService<ClusterView>(), sp.GetRequiredService<ClockSkewGuard>(),
            sp.GetRequiredService<RunningRuns>(), sp.GetRequiredService<IRunNotifier>(), sp.GetRequiredService<ExecutorOptions>(),
            sp.GetRequiredService<ChildRunner>(), sp.GetRequiredService<FiringStats>(), time, logger)
        {
            RequestTimeout = sp.GetRequiredService<FiringClient>().Client.Options.RequestTimeout,
        });
        if (options.MetricsListen is { } listen)
        {
            builder.Services.AddHostedService(sp => new MetricsService(listen, sp.GetRequiredService<ExecutorInstruments>(), logger));
        }

        builder.Services.AddHostedService(sp => Instrumented(sp));
        builder.Services.AddHostedService<MembershipService>();
        builder.Services.AddHostedService<KvWatchService>();
        builder.Services.AddHostedService<FiringService>();
        return builder.Build();
    }

    /// <summary>Counts the client's requests in <c>dtask_consul_requests_total</c>.</summary>
    private static ConsulClient Counted(ConsulClient client, IServiceProvider services)
    {
        var instruments = services.GetRequiredService<ExecutorInstruments>();
        client.Requests.Completed += (path, method, failed) => instruments.CountConsulRequest(ExecutorInstruments.ConsulEndpoint(path), method, failed);
        return client;
    }

    /// <summary>Points the instruments' gauges and counters at the executor's parts (a hosted service that does nothing more).</summary>
    private static NothingService Instrumented(IServiceProvider services)
    {
        var instruments = services.GetRequiredService<ExecutorInstruments>();
        var view = services.GetRequiredService<ClusterView>();
        var skew = services.GetRequiredService<ClockSkewGuard>();
        var runs = services.GetRequiredService<RunningRuns>();
        var time = services.GetRequiredService<TimeProvider>();
        instruments.Observe(() => Schedules(view, time), () => skew.Current.Estimate, () => runs.Count, skew.Limit,
            (ns, name) => view.Tasks.ContainsKey(new TaskId(ns, name)));
        services.GetRequiredService<NodeMembership>().SessionLost += instruments.CountSessionLoss;
        services.GetRequiredService<FiringStats>().Claimed += (request, result) => Count(instruments, request, result);
        return new NothingService();
    }

    private static IEnumerable<TaskScheduleView> Schedules(ClusterView view, TimeProvider time)
    {
        var now = time.GetUtcNow();
        var nodes = view.Nodes;
        foreach (var task in view.Tasks.Values)
        {
            var next = task.Spec.IsSuspended ? null : task.Schedule.Next(now);
            var after = next is { } n ? task.Schedule.Next(n) : null;
            var eligible = nodes.Count(node => task.Selects(node.Labels) && node.State != NodeRecord.ClockSkewed);
            yield return new TaskScheduleView(task.Id.Namespace, task.Id.Name, next, after - next, task.Spec.IsSuspended, eligible);
        }
    }

    private static void Count(ExecutorInstruments instruments, FireRequest request, FireResult? result)
    {
        instruments.CountClaim(result?.Status switch
        {
            null => ClaimResult.Ambiguous,
            FireStatus.Ran => ClaimResult.Won,
            FireStatus.AlreadyClaimed => ClaimResult.Lost,
            _ => ClaimResult.Refused,
        });
        if (result is { Status: FireStatus.Busy, Marked: true })
        {
            instruments.CountSkipped(request.Task.Namespace, request.Task.Name, RunReasons.StillRunning);
        }
    }

    private sealed class NothingService : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }

    /// <summary>Hands out the given options instance (a record with init-only properties) and runs the validators on it.</summary>
    private sealed class FixedOptionsFactory(ExecutorOptions options, IEnumerable<IValidateOptions<ExecutorOptions>> validators)
        : OptionsFactory<ExecutorOptions>([], [], validators)
    {
        protected override ExecutorOptions CreateInstance(string name) => options;
    }
}
