using Dtask.Consul;
using Microsoft.Extensions.Hosting;
using Serilog;

namespace Dtask.Executor.Daemon;

/// <summary>The Consul client of the firing path (claims, finishes, markers, control writes), apart from the client of
/// sessions and watches, so its request counters measure what firing costs.</summary>
/// <param name="Client">The client.</param>
public sealed record FiringClient(ConsulClient Client);

/// <summary>The Consul client of the sessions and the node registration alone: its own connection, so a renewal never
/// waits behind task work or a watch.</summary>
/// <param name="Client">The client.</param>
public sealed record MembershipClient(ConsulClient Client);

/// <summary>
/// Registers the node before anything else starts (<see cref="StartAsync"/> completes only once <c>nodes/&lt;node&gt;</c>
/// is written), keeps the sessions and the registration alive, and on shutdown — after the firing has drained — removes
/// the registration, destroys the sessions and logs the Consul request counts.
/// </summary>
public sealed class MembershipService(NodeMembership membership, ConsulClient client, MembershipClient sessions, FiringClient firing, FiringStats stats, ILogger logger) : IHostedService, IDisposable
{
    private readonly CancellationTokenSource stop = new();
    private Task keeping = Task.CompletedTask;

    /// <inheritdoc />
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await membership.JoinAsync(cancellationToken).ConfigureAwait(false);
        keeping = Task.WhenAll(membership.KeepAsync(stop.Token), membership.StampAsync(stop.Token));
    }

    /// <inheritdoc />
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await stop.CancelAsync().ConfigureAwait(false);
        await keeping.ConfigureAwait(false);
        await membership.LeaveAsync().ConfigureAwait(false);
        var fired = firing.Client.Requests.Snapshot();
        var watches = client.Requests.Snapshot();
        var renewals = sessions.Client.Requests.Snapshot();
        logger.Information("consul requests: firing {FiringRequests} requests {FiringWrites} writes for {Ran} runs here; sessions and watches {OtherRequests} requests {OtherWrites} writes",
            fired.Requests, fired.Writes, stats.Ran, watches.Requests + renewals.Requests, watches.Writes + renewals.Writes);
    }

    /// <inheritdoc />
    public void Dispose() => stop.Dispose();
}
