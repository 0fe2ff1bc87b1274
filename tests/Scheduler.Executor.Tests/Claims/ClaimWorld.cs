using Dtask.Consul;
using Dtask.Consul.Locking;
using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Executor.Claims;
using Dtask.Executor.Firing;
using Dtask.Executor.Ledger;
using Dtask.Executor.Processes;
using Dtask.Executor.Tests.Support;
using Dtask.Testing;
using Serilog.Core;

namespace Dtask.Executor.Tests.Claims;

/// <summary>One test's corner of the shared agent: its own prefix, task and clients; executors made on demand.</summary>
public sealed class ClaimWorld : IAsyncDisposable
{
    private readonly ConsulFixture consul;
    private readonly List<IAsyncDisposable> owned = [];
    private readonly List<ConsulClient> clients = [];

    public ClaimWorld(ConsulFixture consul)
    {
        this.consul = consul;
        Client = consul.NewClient();
        Store = new RunStateStore(Client, Layout);
    }

    public KvLayout Layout { get; } = new(TestKvPrefix.New("dtask-test/"));

    public TaskId Task { get; } = new("ops", "job-" + Guid.NewGuid().ToString("N")[..8]);

    public ConsulClient Client { get; }

    public RunStateStore Store { get; }

    /// <summary>A slot far from "now", so deadlines never interfere.</summary>
    public static long Slot(int index) => 1_900_000_000 + (index * 60);

    public async Task<SessionRenewal> SessionAsync(ConsulClient? client = null, TimeSpan? ttl = null)
    {
        var session = await SessionRenewal.CreateAsync(client ?? Client, new ExecutorSessionOptions { Ttl = ttl ?? TimeSpan.FromSeconds(30) });
        owned.Add(session);
        return session;
    }

    public async Task<Executor> ExecutorAsync(string node, TimeSpan? ttl = null, TimeSpan? grace = null)
    {
        var client = consul.NewClient();
        clients.Add(client);
        var session = await SessionAsync(client, ttl);
        var events = new EventLog();
        var runner = new ChildRunner(new ChildRunnerOptions { TerminationGrace = grace ?? TimeSpan.FromSeconds(2) });
        var firing = new SlotFiring(new ConsulTaskLedger(client, Layout), session, node, events, Logger.None, runner) { LockDelayRetry = TimeSpan.FromMilliseconds(300) };
        return new Executor(node, client, session, firing, events);
    }

    /// <summary>
    /// An executor whose firing goes through <paramref name="faults"/>; its session too when <paramref name="sessionThroughFaults"/>
    /// (otherwise it is renewed on a healthy client, so it lives through the faults).
    /// </summary>
    public async Task<Executor> FaultyExecutorAsync(string node, FaultInjectingHandler faults, bool sessionThroughFaults = false, ExecutorSessionOptions? sessionOptions = null)
    {
        var client = new ConsulClient(consul.Agent.ClientOptions(), faults);
        clients.Add(client);
        var session = await SessionRenewal.CreateAsync(sessionThroughFaults ? client : Client, sessionOptions ?? new ExecutorSessionOptions { Ttl = TimeSpan.FromSeconds(30) });
        owned.Add(session);
        var events = new EventLog();
        var runner = new ChildRunner(new ChildRunnerOptions { TerminationGrace = TimeSpan.FromSeconds(2) });
        var firing = new SlotFiring(new ConsulTaskLedger(client, Layout), session, node, events, Logger.None, runner) { LockDelayRetry = TimeSpan.FromMilliseconds(300) };
        return new Executor(node, client, session, firing, events);
    }

    public FireRequest Request(long slot, string script) =>
        new(Task, slot, ChildCommand.Shell(script), DateTimeOffset.FromUnixTimeSeconds(slot) + TimeSpan.FromDays(3650));

    public async Task<RunRecord?> HistoryAsync(long slot)
    {
        var pair = (await Client.Kv.GetAsync(Layout.HistoryKey(Task.Namespace, Task.Name, slot))).Value;
        return pair is null ? null : RunStateStore.Decode(pair.Value);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var item in owned)
        {
            await item.DisposeAsync();
        }

        foreach (var client in clients)
        {
            client.Dispose();
        }

        Client.Dispose();
    }

    public sealed record Executor(string Node, ConsulClient Client, SessionRenewal Session, SlotFiring Firing, EventLog Events);
}
