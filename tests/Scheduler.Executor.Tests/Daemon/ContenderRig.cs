using Dtask.Consul;
using Dtask.Core.Model;
using Dtask.Core.Scheduling;
using Dtask.Core.State;
using Dtask.Executor.Claims;
using Dtask.Executor.Daemon;
using Dtask.Executor.Ledger;
using Dtask.Executor.Processes;
using Dtask.Executor.Tests.Claims;
using Dtask.Executor.Tests.Support;

namespace Dtask.Executor.Tests.Daemon;

/// <summary>
/// One in-process executor's <see cref="SlotContender"/> for a <see cref="ClaimWorld"/>'s task: its firing goes through
/// <see cref="Faults"/>, and so does its membership (registration and claim session), as a node whose only way to Consul is
/// that agent.
/// </summary>
public sealed class ContenderRig : IAsyncDisposable
{
    private readonly ConsulClient client;
    private readonly NodeMembership membership;
    private readonly ClaimWorld world;

    private ContenderRig(ClaimWorld world, ConsulClient client, NodeMembership membership, ClusterView view, ExecutorOptions options, FaultInjectingHandler faults,
        TimeSpan? triggerLife = null)
    {
        this.client = client;
        this.membership = membership;
        this.world = world;
        View = view;
        Options = options;
        Faults = faults;
        Skew = new ClockSkewGuard(options.SkewLimit, TimeProvider.System, Log.CreateLogger(), options.Node);
        var runner = new ChildRunner(new ChildRunnerOptions { TerminationGrace = TimeSpan.FromSeconds(2) });
        Ledger = new ConsulTaskLedger(client, world.Layout);
        Contender = new SlotContender(Ledger, membership, view, Skew, Runs, Events, options, runner, new FiringStats(),
            TimeProvider.System, Log.CreateLogger()) { TriggerLife = triggerLife ?? TimeSpan.FromHours(1), RequestTimeout = client.Options.RequestTimeout };
        Definition = DefinitionOf(world.Task, new ScheduledTaskSpec { Every = "2s", Shell = "true", ConcurrencyPolicy = ConcurrencyPolicy.Forbid });
    }

    public SlotContender Contender { get; }

    /// <summary>The ledger the contender and the daemon's services use.</summary>
    public ConsulTaskLedger Ledger { get; }

    /// <summary>The contender's clock guard (it sees no Consul answer here: tests feed it references).</summary>
    public ClockSkewGuard Skew { get; }

    /// <summary>The runs this node is firing (shared by its contender and, once started, its daemon services).</summary>
    public RunningRuns Runs { get; } = new();

    public TaskDefinition Definition { get; }

    public ClusterView View { get; }

    public ExecutorOptions Options { get; }

    public FaultInjectingHandler Faults { get; }

    public EventLog Events { get; } = new();

    public CapturingSink Log { get; } = new();

    /// <summary>A rig for node <paramref name="node"/>, registered and holding its claim session.</summary>
    public static async Task<ContenderRig> StartAsync(ConsulFixture consul, ClaimWorld world, string node, TimeSpan? triggerLife = null)
    {
        var faults = new FaultInjectingHandler();
        var client = new ConsulClient(consul.Agent.ClientOptions() with { ReadRetries = 0, RequestTimeout = TimeSpan.FromSeconds(2) }, faults);
        var options = new ExecutorOptions { Node = node, Prefix = world.Layout.Prefix, RankDelay = TimeSpan.FromMilliseconds(100), SessionTtl = TimeSpan.FromSeconds(10), MarkerGuardWait = TimeSpan.FromSeconds(2),
            ShutdownGrace = TimeSpan.FromSeconds(2) };
        var sink = new CapturingSink();
        var membership = new NodeMembership(client, new ConsulTaskLedger(client, world.Layout), world.Layout, options, new ClockSkewGuard(options.SkewLimit, TimeProvider.System, sink.CreateLogger()),
            TimeProvider.System, sink.CreateLogger());
        await membership.JoinAsync(TestContext.Current.CancellationToken);
        return new ContenderRig(world, client, membership, new ClusterView(), options, faults, triggerLife);
    }

    /// <summary>Another contender of this node (same client, session, view, events and log) whose clock is <paramref name="time"/>.</summary>
    public SlotContender ContenderOn(TimeProvider time) =>
        new(new ConsulTaskLedger(client, world.Layout, time), membership, View, new ClockSkewGuard(Options.SkewLimit, TimeProvider.System, Log.CreateLogger()), new RunningRuns(), Events, Options,
            new ChildRunner(new ChildRunnerOptions { TerminationGrace = TimeSpan.FromSeconds(2) }), new FiringStats(), time, Log.CreateLogger())
        {
            RequestTimeout = client.Options.RequestTimeout,
        };

    /// <summary>A ticket for <paramref name="slot"/> due now, whose deadline is <paramref name="window"/> away.</summary>
    public static SlotTicket TicketNow(long slot, TimeSpan window)
    {
        var now = DateTimeOffset.UtcNow;
        return new SlotTicket(slot, now, now + window);
    }

    /// <summary>Makes <paramref name="nodes"/> live in this node's view (besides itself).</summary>
    public void SeeNodes(params string[] nodes) =>
        View.SetNodes([.. nodes.Select(n => new NodeRecord { Node = n, Version = "test", StartedAt = DateTimeOffset.UtcNow })]);

    /// <summary>
    /// Starts this node's watch of the world's KV (<see cref="KvWatchService"/>) and its <see cref="FiringService"/> in
    /// process, over this rig's contender: the executor daemon without its host. Disposing the result stops both.
    /// </summary>
    public async Task<IAsyncDisposable> StartDaemonAsync()
    {
        var watch = new KvWatchService(Ledger, world.Layout, View, Skew, TimeProvider.System, Log.CreateLogger());
        var firing = new FiringService(View, Contender, Ledger, world.Layout, Runs, Options, TimeProvider.System, Log.CreateLogger());
        await watch.StartAsync(TestContext.Current.CancellationToken);
        await firing.StartAsync(TestContext.Current.CancellationToken);
        return new Daemon(watch, firing);
    }

    private sealed class Daemon(KvWatchService watch, FiringService firing) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await firing.StopAsync(CancellationToken.None);
            await watch.StopAsync(CancellationToken.None);
            firing.Dispose();
            watch.Dispose();
        }
    }

    public async ValueTask DisposeAsync()
    {
        Faults.Outage = false;
        Faults.BeforeSend = null;
        await membership.DisposeAsync();
        await Ledger.DisposeAsync();
        client.Dispose();
    }

    public static TaskDefinition DefinitionOf(TaskId task, ScheduledTaskSpec spec) =>
        new(task, spec, TaskSchedule.Create(spec.ToScheduleSpec(task.ToString())), 1);
}
