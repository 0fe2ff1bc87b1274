using System.Globalization;
using Dtask.Chaos.Evidence;
using Dtask.Chaos.Fleet;
using Dtask.Consul.Errors;
using Dtask.Consul.Http;
using Dtask.Core.State;
using Dtask.Testing;

namespace Dtask.Chaos.Faults;

/// <summary>
/// Runs a <see cref="FaultPlan"/> against the cluster and the fleet, printing each fault as it happens, and returns
/// what happened. The plan's lanes run side by side, the faults of a lane one after the other. Executor faults pick the
/// node holding the plan's preferred task when it is alive and not already faulted, else the next healthy node in turn
/// (the turn starts where the seed says). After an executor kill it watches the children the executor had running until
/// they are gone (<see cref="ChildExits"/>).
/// </summary>
public sealed class FaultInjector(ConsulCluster cluster, ExecutorFleet fleet, KvLayout layout, string @namespace, TextWriter output, TimeProvider time,
    Func<IReadOnlyList<WitnessRun>> witness, int seed = 0, Hosts.ChaosTools? tools = null, Hosts.ServerNetwork? servers = null)
{
    private static readonly TimeSpan ChildWatch = TimeSpan.FromSeconds(25);
    private readonly List<FaultEvent> happened = [];
    private readonly List<ChildExit> childExits = [];
    private readonly List<Task> watches = [];
    private readonly HashSet<string> busy = new(StringComparer.Ordinal);
    private int nextVictim = Math.Abs(seed % 97);
    private int partitions = Math.Abs(seed % 2);
    private DateTimeOffset phaseStart;

    /// <summary>The children seen to outlive (or not) an executor killed by the plan.</summary>
    public IReadOnlyList<ChildExit> ChildExits
    {
        get
        {
            lock (childExits)
            {
                return [.. childExits];
            }
        }
    }

    /// <summary>Runs the plan from <paramref name="start"/>; returns when every fault has ended and every child watch is over.</summary>
    public async Task<IReadOnlyList<FaultEvent>> RunAsync(FaultPlan plan, DateTimeOffset start, TimeSpan duration, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(plan);
        phaseStart = start;
        var lastEnd = start + duration - FaultPlan.QuietTail;
        var lanes = plan.Faults.GroupBy(f => f.Lane, StringComparer.Ordinal)
            .Select(lane => RunLaneAsync([.. lane.OrderBy(f => f.At)], plan, lastEnd, cancellationToken)).ToList();
        await Task.WhenAll(lanes).ConfigureAwait(false);
        Task[] pending;
        lock (watches)
        {
            pending = [.. watches];
        }

        await Task.WhenAll(pending).ConfigureAwait(false);
        foreach (var (node, offset) in plan.Clocks.OrderBy(c => c.Key, StringComparer.Ordinal))
        {
            happened.Add(new FaultEvent(FaultKind.ClockOffset, node, start, start + duration, [], $"{node} and its agent {offset.TotalSeconds:+0;-0} s from the start (libfaketime)",
                offset.TotalSeconds));
        }

        lock (happened)
        {
            return [.. happened.OrderBy(f => f.Start)];
        }
    }

    private async Task RunLaneAsync(IReadOnlyList<PlannedFault> lane, FaultPlan plan, DateTimeOffset lastEnd, CancellationToken cancellationToken)
    {
        foreach (var fault in lane)
        {
            await DelayUntilAsync(phaseStart + fault.At, cancellationToken).ConfigureAwait(false);
            if (time.GetUtcNow() + fault.Hold > lastEnd)
            {
                Print($"{fault.Kind}: no time left to hold it {fault.Hold.TotalSeconds:0} s before the quiet tail; dropped");
                continue;
            }

            (FaultEvent Event, Func<Task> Recover)? maybe;
            try
            {
                maybe = await BeginAsync(fault, plan, lastEnd - fault.Hold, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                // A failure of the run's own tooling (a command, a request it makes) is said and the fault left out: the
                // other lanes go on, and the checker judges only the faults that happened.
                Print($"{fault.Kind}: could not be injected ({e.GetType().Name}: {e.Message}); left out");
                continue;
            }

            if (maybe is not { } begun)
            {
                continue;
            }

            try
            {
                if (begun.Event.End is null)
                {
                    await DelayUntilAsync(begun.Event.Start + fault.Hold, cancellationToken).ConfigureAwait(false);
                }
            }
            finally
            {
                await begun.Recover().ConfigureAwait(false);
                lock (busy)
                {
                    busy.Remove(begun.Event.Target);
                }
            }

            var ended = begun.Event.End is null ? begun.Event with { End = time.GetUtcNow() } : begun.Event;
            if (ended.DownsServer)
            {
                // How long the cluster itself took to be healthy again: the executors cannot be asked to run before that.
                try
                {
                    await cluster.WaitForLeaderAsync(TimeSpan.FromSeconds(90), cancellationToken).ConfigureAwait(false);
                    ended = ended with { HealthyAt = time.GetUtcNow() };
                    Print($"cluster healthy again {(ended.HealthyAt!.Value - ended.End!.Value).TotalSeconds:0.0} s after {ended.Kind} of {ended.Target} ended");
                }
                catch (TimeoutException)
                {
                    Print($"cluster not healthy within 90 s after {ended.Kind} of {ended.Target} ended");
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    Print($"cluster health after {ended.Kind} of {ended.Target} not measured ({e.GetType().Name}: {e.Message})");
                }
            }

            lock (happened)
            {
                happened.Add(ended);
            }

            Print($"recovered: {Describe(ended)}");
        }
    }

    private async Task DelayUntilAsync(DateTimeOffset at, CancellationToken cancellationToken)
    {
        var wait = at - time.GetUtcNow();
        if (wait > TimeSpan.Zero)
        {
            await Task.Delay(wait, time, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task<(FaultEvent Event, Func<Task> Recover)?> BeginAsync(PlannedFault fault, FaultPlan plan, DateTimeOffset latestStart, CancellationToken cancellationToken)
    {
        switch (fault.Kind)
        {
            case FaultKind.ExecutorKill or FaultKind.ExecutorPause or FaultKind.HolderPartition or FaultKind.ExecutorIsolation or FaultKind.LinkFlap
                or FaultKind.TreePause:
            {
                var (node, detail) = fault.Kind == FaultKind.TreePause
                    ? await ChooseRunningTreeAsync(fault, latestStart, cancellationToken).ConfigureAwait(false)
                    : await ChooseExecutorAsync(fault, latestStart, cancellationToken).ConfigureAwait(false);
                if (node is null)
                {
                    Print($"{fault.Kind}: no healthy executor {(fault.Kind == FaultKind.TreePause ? "with a running child " : "")}to hit; skipped");
                    return null;
                }

                var started = time.GetUtcNow();
                Func<Task> recover;
                switch (fault.Kind)
                {
                    case FaultKind.ExecutorKill:
                        await node.KillAsync().ConfigureAwait(false);
                        WatchChildren(node.Name, started, FaultKind.ExecutorKill, ChildWatch);
                        recover = async () =>
                        {
                            // Back once it is ready again, not at its start: a restart may be refused (its registration
                            // still held by the killed process's session) and retried by its supervisor, and a started
                            // executor waits for its peers' clocks; the checks count from its return.
                            node.Start();
                            var until = time.GetUtcNow() + TimeSpan.FromSeconds(90);
                            while (true)
                            {
                                try
                                {
                                    await node.WaitReadyAsync(TimeSpan.FromSeconds(1), cancellationToken).ConfigureAwait(false);
                                    break;
                                }
                                catch (TimeoutException) when (time.GetUtcNow() < until)
                                {
                                    // Started again by its supervisor meanwhile, or still starting: look at the current start.
                                }
                                catch (TimeoutException)
                                {
                                    Print($"executor {node.Name} not ready within 90 s of its restart");
                                    break;
                                }
                            }
                        };
                        Print($"SIGKILL executor {node.Name} ({detail}); restart in {fault.Hold.TotalSeconds:0} s");
                        break;
                    case FaultKind.ExecutorPause:
                        node.Pause();
                        recover = () =>
                        {
                            node.Resume();
                            return Task.CompletedTask;
                        };
                        Print($"SIGSTOP executor {node.Name} ({detail}); SIGCONT in {fault.Hold.TotalSeconds:0} s");
                        break;
                    case FaultKind.TreePause:
                    {
                        // The executor and every child group it has running, stopped together (a frozen process tree);
                        // its watchdog runs in a session of its own and is left running, as the design counts on.
                        var groups = witness().Where(r => r.Node == node.Name && r.End is null && Alive(r.Pid, r.RunId)).Select(r => r.Pid).Distinct().ToList();
                        node.Pause();
                        var stopped = groups.Where(g => ProcessSignal.SendToGroup(g, ProcessSignal.Stop)).ToList();
                        WatchChildren(node.Name, started, FaultKind.TreePause, fault.Hold + TimeSpan.FromSeconds(10));
                        node.Note($"tree paused: executor and child group(s) {string.Join(", ", stopped)}");
                        detail += $"; child group(s) stopped with it: {(stopped.Count == 0 ? "none" : string.Join(", ", stopped))}";
                        recover = () =>
                        {
                            foreach (var group in stopped)
                            {
                                ProcessSignal.SendToGroup(group, ProcessSignal.Continue);
                            }

                            node.Resume();
                            return Task.CompletedTask;
                        };
                        Print($"SIGSTOP executor {node.Name} and its children ({detail}); SIGCONT in {fault.Hold.TotalSeconds:0} s");
                        break;
                    }

                    case FaultKind.HolderPartition:
                    {
                        var network = Network(node);
                        network.SetLink(false);
                        node.Note($"link {network.NodeVeth} down");
                        recover = () =>
                        {
                            network.SetLink(true);
                            node.Note($"link {network.NodeVeth} up");
                            return Task.CompletedTask;
                        };
                        Print($"link down: executor {node.Name} cut off from Consul ({detail}); up in {fault.Hold.TotalSeconds:0} s");
                        break;
                    }

                    case FaultKind.ExecutorIsolation:
                    {
                        var network = Network(node);
                        network.SetDrop(true);
                        node.Note($"nft drop on {network.NodeVeth}");
                        recover = () =>
                        {
                            network.SetDrop(false);
                            node.Note("nft drop removed");
                            return Task.CompletedTask;
                        };
                        Print($"nft drop: executor {node.Name} isolated from everything ({detail}); lifted in {fault.Hold.TotalSeconds:0} s");
                        break;
                    }

                    default:
                    {
                        var network = Network(node);
                        var stop = new CancellationTokenSource();
                        var flaps = FlapAsync(network, stop.Token);
                        node.Note($"link {network.NodeVeth} flapping");
                        recover = async () =>
                        {
                            await stop.CancelAsync().ConfigureAwait(false);
                            await flaps.ConfigureAwait(false);
                            stop.Dispose();
                            network.SetLink(true);
                            node.Note($"link {network.NodeVeth} steady");
                        };
                        Print($"link flapping (1.5 s down, 1.5 s up): executor {node.Name} ({detail}) for {fault.Hold.TotalSeconds:0} s");
                        break;
                    }
                }

                return (new FaultEvent(fault.Kind, node.Name, started, null, [node.Name], detail), recover);
            }

            case FaultKind.LostClaimAnswer or FaultKind.LostFinishAnswer:
            {
                var kind = fault.Kind == FaultKind.LostClaimAnswer ? Hosts.LostAnswer.Claim : Hosts.LostAnswer.Finish;
                var candidates = fleet.Nodes.Where(n => n.IsRunning && !n.IsPaused && n.Host is not null).ToList();
                var budget = 1;
                using var armed = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                var losing = candidates.Select(async n => (Node: n, Lost: await n.Host!.Gateway.LoseNextAsync(kind, fault.Hold, () => Interlocked.Exchange(ref budget, 0) == 1, armed.Token).ConfigureAwait(false))).ToList();
                (ExecutorNode Node, string? Lost)? hit = null;
                while (losing.Count > 0)
                {
                    var done = await Task.WhenAny(losing).ConfigureAwait(false);
                    losing.Remove(done);
                    if ((await done.ConfigureAwait(false)).Lost is not null)
                    {
                        hit = await done.ConfigureAwait(false);
                        break;
                    }
                }

                await armed.CancelAsync().ConfigureAwait(false);
                await Task.WhenAll(losing).ConfigureAwait(false);
                var at = time.GetUtcNow();
                if (hit is not { } lost)
                {
                    Print($"{fault.Kind}: no {kind.ToString().ToLowerInvariant()} transaction within {fault.Hold.TotalSeconds:0} s; skipped");
                    return null;
                }

                lost.Node.Note("answer lost: " + lost.Lost);
                Print($"lost answer: executor {lost.Node.Name}: {lost.Lost}");
                return (new FaultEvent(fault.Kind, lost.Node.Name, at, at, [lost.Node.Name], lost.Lost!), () => Task.CompletedTask);
            }

            case FaultKind.ClockJump:
            {
                if (plan.JumpNode is not { } name || fleet.Nodes.FirstOrDefault(n => n.Name == name)?.Host?.Clock is not { } clock)
                {
                    Print("ClockJump: no executor under libfaketime to jump; skipped");
                    return null;
                }

                var before = clock.Offset;
                var offset = before + (fault.Offset ?? TimeSpan.FromHours(1));
                var started = time.GetUtcNow();
                clock.Set(offset);
                fleet[name].Note($"clock jumps to {offset.TotalSeconds:+0;-0;0} s");
                Print($"clock jump: executor {name} and its agent to {offset.TotalSeconds:+0;-0;0} s; back in {fault.Hold.TotalSeconds:0} s");
                return (new FaultEvent(fault.Kind, name, started, null, [], $"{name} and its agent jump {(offset - before).TotalSeconds:+0;-0} s while running", offset.TotalSeconds), () =>
                {
                    clock.Set(before);
                    fleet[name].Note($"clock back to {before.TotalSeconds:+0;-0;0} s");
                    return Task.CompletedTask;
                });
            }

            case FaultKind.ClockDrift:
            {
                if (plan.JumpNode is not { } name || fleet.Nodes.FirstOrDefault(n => n.Name == name)?.Host?.Clock is not { } clock)
                {
                    Print("ClockDrift: no executor under libfaketime to drift; skipped");
                    return null;
                }

                var before = clock.Offset;
                var peak = fault.Offset ?? FaultPlan.DriftPeak;
                var started = time.GetUtcNow();
                var stop = new CancellationTokenSource();
                var drifting = DriftAsync(clock, before, peak, fault.Hold, stop.Token);
                fleet[name].Note($"clock drifts to {(before + peak).TotalSeconds:+0.#;-0.#;0} s and back over {fault.Hold.TotalSeconds:0} s");
                Print($"clock drift: executor {name} and its agent drift {peak.TotalSeconds / (fault.Hold.TotalSeconds / 2):+0.00;-0.00} s a second to {(before + peak).TotalSeconds:+0.#;-0.#;0} s and back over {fault.Hold.TotalSeconds:0} s");
                return (new FaultEvent(fault.Kind, name, started, null, [], $"{name} and its agent drift {peak.TotalSeconds:+0;-0} s and back, {Math.Abs(peak.TotalSeconds / (fault.Hold.TotalSeconds / 2)):0.00} s a second",
                    (before + peak).TotalSeconds), async () =>
                {
                    await stop.CancelAsync().ConfigureAwait(false);
                    await drifting.ConfigureAwait(false);
                    stop.Dispose();
                    clock.Set(before);
                    fleet[name].Note($"clock back to {before.TotalSeconds:+0;-0;0} s");
                });
            }

            case FaultKind.ConsulPartition:
            {
                // Cut a healthy cluster only (every server accepts a write): a server still catching up after an earlier
                // fault would leave the majority without a quorum, and the partition would judge that instead.
                ConsulClusterServer? leader = null;
                try
                {
                    leader = await cluster.WaitForLeaderAsync(TimeSpan.FromSeconds(30), cancellationToken).ConfigureAwait(false);
                }
                catch (TimeoutException)
                {
                    // Reported below.
                }

                if (tools is null || servers is null || leader is null)
                {
                    Print($"ConsulPartition: {(tools is null || servers is null ? "no nft, or servers without namespaces of their own" : "no healthy cluster within 30 s")}; skipped");
                    return null;
                }

                // And one that can lose a server: autopilot counts a server restarted a moment ago as not yet stable, and a
                // majority with such a server may take until the partition heals to elect a leader.
                leader = await WaitForLeaderAsync(cancellationToken).ConfigureAwait(false) ?? leader;
                if (TooLate(fault, latestStart))
                {
                    return null;
                }

                // In turn: the leader (it must step down: it cannot reach a quorum), then a follower with executors on it.
                var minority = partitions++ % 2 == 0
                    ? leader
                    : cluster.Servers.Where(s => s.IsRunning && s != leader).OrderByDescending(s => fleet.AttachedTo(s).Count).FirstOrDefault() ?? leader;
                var majority = cluster.Servers.Where(s => s != minority).ToList();
                var cut = fleet.AttachedTo(minority).Select(n => n.Name).ToList();
                var partition = new Hosts.ServerPartition(tools, servers);
                var started = time.GetUtcNow();
                partition.Cut(minority.Host, [.. majority.Select(s => s.Host)]);
                var detail = $"{(minority == leader ? "the leader" : "a follower")} {minority.Host} cut off from {string.Join(", ", majority.Select(s => $"{s.Name} {s.Host}"))}; executors on its side: {(cut.Count == 0 ? "none" : string.Join(", ", cut))}";
                Print($"nft partition: Consul server {minority.Name} ({detail}); healed in {fault.Hold.TotalSeconds:0} s");
                return (new FaultEvent(fault.Kind, minority.Name, started, null, cut, detail), () =>
                {
                    partition.Dispose();
                    return Task.CompletedTask;
                });
            }

            case FaultKind.AgentRestart:
            {
                var servers = cluster.Servers.Where(s => s.IsRunning && fleet.AttachedTo(s).Count > 0).ToList();
                if (servers.Count == 0)
                {
                    Print("AgentRestart: no running server with executors on it; skipped");
                    return null;
                }

                var leader = await WaitForLeaderAsync(cancellationToken).ConfigureAwait(false);
                if (TooLate(fault, latestStart))
                {
                    return null;
                }
                var server = servers[nextVictim++ % servers.Count];
                var nodeId = NodeId(server);
                var cut = fleet.AttachedTo(server).Select(n => n.Name).ToList();
                var started = time.GetUtcNow();
                await server.StopAsync().ConfigureAwait(false);
                var detail = $"{(server == leader ? "the leader" : "a follower")}; executors on it: {string.Join(", ", cut)}; data directory kept (node id {nodeId ?? "unknown"})";
                Print($"SIGTERM Consul server {server.Name} ({detail}); started again with the same data and configuration in {fault.Hold.TotalSeconds:0} s");
                return (new FaultEvent(fault.Kind, server.Name, started, null, cut, detail), () =>
                {
                    server.Start();
                    var again = NodeId(server);
                    Print(again == nodeId
                        ? $"Consul server {server.Name} started again on its data directory (node id {again} kept)"
                        : $"Consul server {server.Name} started again but its node id changed from {nodeId ?? "none"} to {again ?? "none"}");
                    return Task.CompletedTask;
                });
            }

            case FaultKind.LeaderKill:
            {
                var leader = await WaitForLeaderAsync(cancellationToken).ConfigureAwait(false);
                if (TooLate(fault, latestStart))
                {
                    return null;
                }
                if (leader is null)
                {
                    Print("LeaderKill: no leader found within 20 s; skipped");
                    return null;
                }

                var cut = fleet.AttachedTo(leader).Select(n => n.Name).ToList();
                var started = time.GetUtcNow();
                await leader.KillAsync().ConfigureAwait(false);
                var detail = $"executors on it: {(cut.Count == 0 ? "none" : string.Join(", ", cut))}";
                Print($"SIGKILL Consul leader {leader.Name} ({detail}); restart in {fault.Hold.TotalSeconds:0} s");
                return (new FaultEvent(fault.Kind, leader.Name, started, null, cut, detail), () =>
                {
                    leader.Start();
                    return Task.CompletedTask;
                });
            }

            case FaultKind.AgentHang:
            {
                var leader = await WaitForLeaderAsync(cancellationToken).ConfigureAwait(false);
                if (TooLate(fault, latestStart))
                {
                    return null;
                }
                var servers = cluster.Servers.Where(s => s.IsRunning && fleet.AttachedTo(s).Count > 0).ToList();
                if (servers.Count == 0)
                {
                    Print("AgentHang: no running server with executors on it; skipped");
                    return null;
                }

                var server = servers[nextVictim++ % servers.Count];
                if (server.ProcessId is not { } pid)
                {
                    return null;
                }

                var cut = fleet.AttachedTo(server).Select(n => n.Name).ToList();
                var started = time.GetUtcNow();
                ProcessSignal.Send(pid, ProcessSignal.Stop);
                var detail = $"{(server == leader ? "the leader" : "a follower")}; executors on it: {string.Join(", ", cut)}";
                Print($"SIGSTOP Consul server {server.Name} ({detail}) for {fault.Hold.TotalSeconds:0} s, past the executors' {FaultPlan.HttpTimeout.TotalSeconds:0} s HTTP timeout");
                return (new FaultEvent(fault.Kind, server.Name, started, null, cut, detail), () =>
                {
                    ProcessSignal.Send(pid, ProcessSignal.Continue);
                    return Task.CompletedTask;
                });
            }

            case FaultKind.FollowerRestart:
            {
                var leader = await WaitForLeaderAsync(cancellationToken).ConfigureAwait(false);
                if (TooLate(fault, latestStart))
                {
                    return null;
                }
                var follower = cluster.Servers.FirstOrDefault(s => s.IsRunning && s != leader);
                if (follower is null)
                {
                    Print("FollowerRestart: no running follower; skipped");
                    return null;
                }

                var cut = fleet.AttachedTo(follower).Select(n => n.Name).ToList();
                var started = time.GetUtcNow();
                await follower.StopAsync().ConfigureAwait(false);
                var detail = $"leader {leader?.Name ?? "unknown"}; executors on it: {(cut.Count == 0 ? "none" : string.Join(", ", cut))}";
                Print($"SIGTERM Consul follower {follower.Name} ({detail}); start in {fault.Hold.TotalSeconds:0} s");
                return (new FaultEvent(fault.Kind, follower.Name, started, null, cut, detail), () =>
                {
                    follower.Start();
                    return Task.CompletedTask;
                });
            }

            default:
                throw new ArgumentOutOfRangeException(nameof(fault), fault.Kind, "not a fault of the plan's schedule");
        }
    }

    private static string? NodeId(ConsulClusterServer server)
    {
        try
        {
            return File.ReadAllText(Path.Combine(server.DataDirectory, "node-id")).Trim();
        }
        catch (IOException)
        {
            return null;
        }
    }

    private static async Task DriftAsync(Hosts.NodeClock clock, TimeSpan from, TimeSpan peak, TimeSpan hold, CancellationToken cancellationToken)
    {
        var watch = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                clock.Set(Hosts.NodeClock.Drift(from, peak, hold, watch.Elapsed));
                await Task.Delay(TimeSpan.FromMilliseconds(250), cancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
            // The hold is over.
        }
    }

    private static Hosts.NodeNetwork Network(ExecutorNode node) =>
        node.Host?.Network ?? throw new InvalidOperationException($"executor {node.Name} has no network namespace of its own");

    private static async Task FlapAsync(Hosts.NodeNetwork network, CancellationToken cancellationToken)
    {
        var up = false;
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                network.SetLink(up);
                up = !up;
                await Task.Delay(TimeSpan.FromMilliseconds(1500), cancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
            // The hold is over.
        }
    }

    private void WatchChildren(string node, DateTimeOffset diedAt, FaultKind cause, TimeSpan within)
    {
        var watch = Task.Run(async () =>
        {
            var seen = new Dictionary<string, (int Pid, DateTimeOffset? Gone)>(StringComparer.Ordinal);
            var until = time.GetUtcNow() + within;
            while (time.GetUtcNow() < until)
            {
                foreach (var run in witness().Where(r => r.Node == node && r.Start <= diedAt + TimeSpan.FromSeconds(1) && (r.End is null || r.End > diedAt)))
                {
                    if (!seen.ContainsKey(run.RunId))
                    {
                        seen[run.RunId] = (run.Pid, null);
                    }
                }

                var now = time.GetUtcNow();
                foreach (var (runId, (pid, gone)) in seen.ToList())
                {
                    if (gone is null && !Alive(pid, runId))
                    {
                        seen[runId] = (pid, now);
                    }
                }

                if (now > diedAt + TimeSpan.FromSeconds(2) && seen.Values.All(s => s.Gone is not null))
                {
                    break;
                }

                await Task.Delay(TimeSpan.FromMilliseconds(100), time, CancellationToken.None).ConfigureAwait(false);
            }

            lock (childExits)
            {
                childExits.AddRange(seen.Select(s => new ChildExit(node, s.Key, s.Value.Pid, diedAt, s.Value.Gone, cause)));
            }
        });
        lock (watches)
        {
            watches.Add(watch);
        }
    }

    private static bool Alive(int pid, string runId)
    {
        try
        {
            var environ = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/environ");
            if (!environ.Split('\0').Contains("DTASK_RUN_ID=" + runId))
            {
                return false;
            }

            // A zombie (exited, not yet reaped) is gone.
            var stat = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat");
            var state = stat[(stat.LastIndexOf(')') + 2)..].FirstOrDefault();
            return state != 'Z';
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>
    /// True (and said) when waiting for a healthy cluster took <paramref name="fault"/> past <paramref name="latestStart"/>:
    /// held from now it would not end before the quiet tail, and the last slots would be judged on a faulted cluster.
    /// </summary>
    private bool TooLate(PlannedFault fault, DateTimeOffset latestStart)
    {
        if (time.GetUtcNow() <= latestStart)
        {
            return false;
        }

        Print($"{fault.Kind}: the wait for a healthy cluster left no time to hold it {fault.Hold.TotalSeconds:0} s before the quiet tail; dropped");
        return true;
    }

    /// <summary>
    /// The leader, once the cluster can lose a server (autopilot's failure tolerance, up to 30 s): every server fault
    /// waits for it, so that faults in a row judge dtask, not a cluster that had no quorum left to elect with.
    /// </summary>
    private async Task<ConsulClusterServer?> WaitForLeaderAsync(CancellationToken cancellationToken)
    {
        if (!await cluster.WaitForFailureToleranceAsync(TimeSpan.FromSeconds(30), cancellationToken).ConfigureAwait(false))
        {
            Print("autopilot never said the cluster could lose a server within 30 s; the next server fault goes ahead anyway");
        }

        for (var attempt = 0; attempt < 100; attempt++)
        {
            if (await cluster.FindLeaderAsync(cancellationToken).ConfigureAwait(false) is { } leader)
            {
                return leader;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(200), time, cancellationToken).ConfigureAwait(false);
        }

        return null;
    }

    /// <summary>
    /// A healthy executor with a child alive now (by the witness logs and <c>/proc</c>), the holder of the plan's task
    /// first; waits up to a minute for one (never past <paramref name="latestStart"/>).
    /// </summary>
    private async Task<(ExecutorNode? Node, string Detail)> ChooseRunningTreeAsync(PlannedFault fault, DateTimeOffset latestStart, CancellationToken cancellationToken)
    {
        var giveUp = time.GetUtcNow() + TimeSpan.FromMinutes(1);
        giveUp = giveUp > latestStart ? latestStart : giveUp;
        while (true)
        {
            var alive = witness().Where(r => r.End is null && Alive(r.Pid, r.RunId)).ToList();
            var withChild = Healthy().Where(n => alive.Any(r => r.Node == n.Name)).ToList();
            var pick = withChild.FirstOrDefault(n => alive.Any(r => r.Node == n.Name && r.Task == fault.PreferHolderOf)) ?? withChild.FirstOrDefault();
            if (pick is not null && Take(pick))
            {
                return (pick, "runs " + string.Join(", ", alive.Where(r => r.Node == pick.Name).Select(r => $"{@namespace}/{r.Task} slot {r.Slot.ToString(CultureInfo.InvariantCulture)} (pid {r.Pid.ToString(CultureInfo.InvariantCulture)})")));
            }

            if (time.GetUtcNow() >= giveUp)
            {
                return (null, "");
            }

            await Task.Delay(TimeSpan.FromMilliseconds(250), time, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task<(ExecutorNode? Node, string Detail)> ChooseExecutorAsync(PlannedFault fault, DateTimeOffset latestStart, CancellationToken cancellationToken)
    {
        if (fault.PreferHolderOf is { } task)
        {
            var giveUp = time.GetUtcNow() + TimeSpan.FromMinutes(1);
            if (giveUp > latestStart)
            {
                giveUp = latestStart;
            }

            while (true)
            {
                var holder = await HolderOfAsync(task, cancellationToken).ConfigureAwait(false);
                var healthy = Healthy();
                if (holder is { } record && healthy.FirstOrDefault(n => n.Name == record.Node) is { } node)
                {
                    var age = time.GetUtcNow() - (record.StartedAt ?? DateTimeOffset.MinValue);
                    if ((fault.MaxRunAge is not { } max || age <= max) && Take(node))
                    {
                        return (node, $"holds {@namespace}/{task} slot {record.Slot.ToString(CultureInfo.InvariantCulture)}, fence {record.Fence.ToString(CultureInfo.InvariantCulture)}, run {age.TotalSeconds:0.0} s old");
                    }
                }

                if (time.GetUtcNow() >= giveUp)
                {
                    break;
                }

                await Task.Delay(TimeSpan.FromMilliseconds(250), time, cancellationToken).ConfigureAwait(false);
            }
        }

        var candidates = Healthy();
        for (var i = 0; i < candidates.Count; i++)
        {
            var chosen = candidates[nextVictim++ % candidates.Count];
            if (Take(chosen))
            {
                return (chosen, fault.PreferHolderOf is null ? "in turn" : $"no fitting holder of {@namespace}/{fault.PreferHolderOf}; in turn");
            }
        }

        return (null, "");
    }

    private List<ExecutorNode> Healthy()
    {
        lock (busy)
        {
            return [.. fleet.Nodes.Where(n => n.IsRunning && !n.IsPaused && !busy.Contains(n.Name))];
        }
    }

    private bool Take(ExecutorNode node)
    {
        lock (busy)
        {
            return busy.Add(node.Name);
        }
    }

    private async Task<RunRecord?> HolderOfAsync(string task, CancellationToken cancellationToken)
    {
        foreach (var server in cluster.Servers.Where(s => s.IsRunning))
        {
            using var client = server.CreateClient(TimeSpan.FromSeconds(3));
            try
            {
                var pair = (await client.Kv.GetAsync(layout.RunKey(@namespace, task), QueryOptions.ConsistentRead, cancellationToken).ConfigureAwait(false)).Value;
                var record = pair is null ? null : StateJson.TryDeserialize<RunRecord>(pair.ValueAsString());
                return record is { IsRunning: true } ? record with { Fence = (long)pair!.ModifyIndex } : null;
            }
            catch (Exception e) when (e is ConsulException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
            {
                // Try the next server.
            }
        }

        return null;
    }

    private static string Describe(FaultEvent fault) => fault.Kind switch
    {
        FaultKind.ExecutorKill => $"executor {fault.Target} started again",
        FaultKind.ExecutorPause => $"executor {fault.Target} resumed (SIGCONT)",
        FaultKind.LeaderKill => $"Consul server {fault.Target} (the killed leader) started again",
        FaultKind.HolderPartition => $"executor {fault.Target}'s link up again",
        FaultKind.ExecutorIsolation => $"executor {fault.Target}'s drop rule removed",
        FaultKind.LinkFlap => $"executor {fault.Target}'s link steady",
        FaultKind.LostClaimAnswer or FaultKind.LostFinishAnswer => $"answer lost to {fault.Target}",
        FaultKind.AgentHang => $"Consul server {fault.Target} resumed (SIGCONT)",
        FaultKind.ClockJump => $"executor {fault.Target}'s clock back",
        FaultKind.ClockDrift => $"executor {fault.Target}'s clock back from its drift",
        FaultKind.TreePause => $"executor {fault.Target} and its children resumed (SIGCONT)",
        FaultKind.ConsulPartition => $"Consul server {fault.Target}'s partition healed",
        FaultKind.AgentRestart => $"Consul server {fault.Target} running again on its kept data",
        _ => $"Consul follower {fault.Target} started again",
    };

    private void Print(string message)
    {
        var now = time.GetUtcNow();
        output.WriteLine($"[{(now - phaseStart).TotalSeconds,6:0.0} s  {now:HH:mm:ss.fff}Z] fault: {message}");
    }
}
