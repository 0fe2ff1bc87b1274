using Dtask.Consul;
using Dtask.Consul.Configuration;
using Dtask.Core.Metrics;
using Dtask.Core.State;
using Dtask.Operator.Health;
using Dtask.Operator.Sources.Directory;
using Dtask.Operator.Sources.Kubernetes;
using k8s;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Dtask.Operator.Hosting;

/// <summary>
/// The Generic Host of <c>dtask operator</c>: the source's operator as a hosted service, a shared
/// <see cref="ConsulClient"/>, single-line console logs in UTC (the Consul token is never written: the client's
/// options print it redacted), options validated when the host starts, the health endpoints when a port is given,
/// and systemd integration (<c>Type=notify</c>, journal-friendly output) when run as a unit.
/// </summary>
public static class OperatorHost
{
    /// <summary>Builds the host of the directory source; run it with <c>RunAsync</c>.</summary>
    /// <param name="consul">How to reach Consul.</param>
    /// <param name="layout">The KV prefix.</param>
    /// <param name="options">The directory source's options (validated at start).</param>
    /// <param name="minimumLevel">The least level logged.</param>
    /// <param name="health">Where the health endpoints listen; none when null.</param>
    public static IHost BuildDirectoryOperator(ConsulClientOptions consul, KvLayout layout, DirectorySourceOptions options, LogLevel minimumLevel = LogLevel.Information,
        HealthOptions? health = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var builder = CreateBuilder(consul, layout, minimumLevel, health);
        AddValidated(builder.Services, options, o => o.Problems());
        builder.Services.AddSingleton(services => new DirectoryOperator(
            services.GetRequiredService<ConsulClient>(),
            layout,
            services.GetRequiredService<IOptions<DirectorySourceOptions>>().Value,
            services.GetRequiredService<TimeProvider>(),
            services.GetRequiredService<ILoggerFactory>(),
            services.GetRequiredService<OperatorReadiness>())
        {
            Instruments = services.GetRequiredService<OperatorInstruments>(),
        });
        builder.Services.AddHostedService(services => services.GetRequiredService<DirectoryOperator>());
        return builder.Build();
    }

    /// <summary>Builds the host of the Kubernetes source; run it with <c>RunAsync</c>.</summary>
    /// <param name="consul">How to reach Consul.</param>
    /// <param name="layout">The KV prefix.</param>
    /// <param name="kubernetes">How to reach the API server (<see cref="KubernetesConnection.Resolve"/>).</param>
    /// <param name="options">The Kubernetes source's options (validated at start).</param>
    /// <param name="minimumLevel">The least level logged.</param>
    /// <param name="health">Where the health endpoints listen; none when null.</param>
    public static IHost BuildKubernetesOperator(ConsulClientOptions consul, KvLayout layout, KubernetesClientConfiguration kubernetes,
        KubernetesSourceOptions options, LogLevel minimumLevel = LogLevel.Information, HealthOptions? health = null)
    {
        ArgumentNullException.ThrowIfNull(kubernetes);
        ArgumentNullException.ThrowIfNull(options);
        var builder = CreateBuilder(consul, layout, minimumLevel, health);
        AddValidated(builder.Services, options, o => o.Problems());
        builder.Services.AddSingleton<IKubernetes>(_ => new k8s.Kubernetes(kubernetes));
        builder.Services.AddSingleton(services => new KubernetesOperator(
            services.GetRequiredService<IKubernetes>(),
            services.GetRequiredService<ConsulClient>(),
            layout,
            services.GetRequiredService<IOptions<KubernetesSourceOptions>>().Value,
            services.GetRequiredService<OperatorReadiness>(),
            services.GetRequiredService<TimeProvider>(),
            services.GetRequiredService<ILoggerFactory>())
        {
            Instruments = services.GetRequiredService<OperatorInstruments>(),
        });
        builder.Services.AddHostedService(services => services.GetRequiredService<KubernetesOperator>());
        return builder.Build();
    }

    private static HostApplicationBuilder CreateBuilder(ConsulClientOptions consul, KvLayout layout, LogLevel minimumLevel, HealthOptions? health)
    {
        ArgumentNullException.ThrowIfNull(consul);
        ArgumentNullException.ThrowIfNull(layout);
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
        {
            DisableDefaults = true,
            ApplicationName = "dtask-operator",
            ContentRootPath = AppContext.BaseDirectory,
        });
        builder.Logging.ClearProviders();
        builder.Logging.SetMinimumLevel(minimumLevel);
        builder.Logging.AddSimpleConsole(console =>
        {
            console.SingleLine = true;
            console.UseUtcTimestamp = true;
            console.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
        });
        builder.Services.AddSystemd();
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton(layout);
        builder.Services.AddSingleton<OperatorReadiness>();
        builder.Services.AddSingleton<OperatorInstruments>();
        builder.Services.AddSingleton(services => new PrometheusMeterExport(services.GetRequiredService<OperatorInstruments>().Meter));
        builder.Services.AddSingleton(_ => new ConsulClient(consul));
        if (health is not null)
        {
            // First, so the probes answer (503) while the operator starts.
            AddValidated(builder.Services, health, o => o.Problems());
            builder.Services.AddSingleton(services => new HealthServer(
                services.GetRequiredService<IOptions<HealthOptions>>().Value,
                services.GetRequiredService<OperatorReadiness>(),
                services.GetRequiredService<ILoggerFactory>().CreateLogger<HealthServer>(),
                services.GetRequiredService<PrometheusMeterExport>()));
            builder.Services.AddHostedService(services => services.GetRequiredService<HealthServer>());
        }

        return builder;
    }

    private static void AddValidated<TOptions>(IServiceCollection services, TOptions given, Func<TOptions, IReadOnlyList<string>> problems)
        where TOptions : class
    {
        services.AddSingleton<IValidateOptions<TOptions>>(new ProblemsValidation<TOptions>(problems));
        services.AddSingleton<IOptionsFactory<TOptions>>(s => new GivenOptionsFactory<TOptions>(given, s.GetServices<IValidateOptions<TOptions>>()));
        services.AddOptions<TOptions>().ValidateOnStart();
    }
}
