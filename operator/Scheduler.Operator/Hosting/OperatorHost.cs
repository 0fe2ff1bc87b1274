using Dtask.Consul;
using Dtask.Consul.Configuration;
using Dtask.Core.State;
using Dtask.Operator.Sources.Directory;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Dtask.Operator.Hosting;

/// <summary>
/// The Generic Host of <c>dtask operator --source dir:PATH</c>: the <see cref="DirectoryOperator"/> as a hosted
/// service, a shared <see cref="ConsulClient"/>, single-line console logs in UTC (the Consul token is never
/// written: the client's options print it redacted), and systemd integration (<c>Type=notify</c>, journal-friendly
/// output) when run as a unit.
/// </summary>
public static class OperatorHost
{
    /// <summary>Builds the host; run it with <c>RunAsync</c>.</summary>
    /// <param name="consul">How to reach Consul.</param>
    /// <param name="layout">The KV prefix.</param>
    /// <param name="options">The directory source's options (checked with <see cref="DirectorySourceOptions.Problems"/> by the caller).</param>
    /// <param name="minimumLevel">The least level logged.</param>
    public static IHost BuildDirectoryOperator(ConsulClientOptions consul, KvLayout layout, DirectorySourceOptions options, LogLevel minimumLevel = LogLevel.Information)
    {
        ArgumentNullException.ThrowIfNull(consul);
        ArgumentNullException.ThrowIfNull(layout);
        ArgumentNullException.ThrowIfNull(options);
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
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton(_ => new ConsulClient(consul));
        builder.Services.AddSingleton(services => new DirectoryOperator(
            services.GetRequiredService<ConsulClient>(),
            layout,
            options,
            services.GetRequiredService<TimeProvider>(),
            services.GetRequiredService<ILoggerFactory>()));
        builder.Services.AddHostedService(services => services.GetRequiredService<DirectoryOperator>());
        return builder.Build();
    }
}
