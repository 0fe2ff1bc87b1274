using System.Globalization;
using Dtask.Chaos.Fleet;
using Dtask.Consul.Errors;
using Dtask.Consul.Http;
using Dtask.Core.State;
using Dtask.Testing;

namespace Dtask.Chaos.Faults;

/// <summary>
/// Runs a <see cref="FaultPlan"/> against the cluster and the fleet, printing each fault as it happens, and returns
/// what happened. Executor faults pick the node holding the plan's preferred task when it is alive and not already
/// faulted, else the next healthy node in turn.
/// </summary>
public sealed class FaultInjector(ConsulCluster cluster, ExecutorFleet fleet, KvLayout layout, string @namespace, TextWriter output, TimeProvider time)
{
    private int nextVictim;

    /// <summary>Runs the plan from <paramref name="phaseStart"/>, one fault after the other; returns when every fault has ended.</summary>
    public async Task<IReadOnlyList<FaultEvent>> RunAsync(FaultPlan plan, DateTimeOffset phaseStart, TimeSpan duration, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(plan);
        var happened = new List<FaultEvent>();
        var lastEnd = phaseStart + duration - FaultPlan.QuietTail;
        foreach (var fault in plan.Faults.OrderBy(f => f.At))
        {
            await DelayUntilAsync(phaseStart + fault.At, cancellationToken).ConfigureAwait(false);
            if (time.GetUtcNow() + fault.Hold > lastEnd)
            {
                Print(phaseStart, $"{fault.Kind}: no time left to hold it {fault.Hold.TotalSeconds:0} s before the quiet tail; dropped");
                continue;
            }

            if (await BeginAsync(fault, phaseStart, lastEnd - fault.Hold, cancellationToken).ConfigureAwait(false) is not { } begun)
            {
                continue;
            }

            try
            {
                await DelayUntilAsync(begun.Event.Start + fault.Hold, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                await begun.Recover().ConfigureAwait(false);
            }

            var ended = begun.Event with { End = time.GetUtcNow() };
            happened.Add(ended);
            Print(phaseStart, $"recovered: {Describe(ended)}");
        }

        return happened;
    }

    private async Task DelayUntilAsync(DateTimeOffset at, CancellationToken cancellationToken)
    {
        var wait = at - time.GetUtcNow();
        if (wait > TimeSpan.Zero)
        {
            await Task.Delay(wait, time, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task<(FaultEvent Event, Func<Task> Recover)?> BeginAsync(PlannedFault fault, DateTimeOffset phaseStart, DateTimeOffset latestStart, CancellationToken cancellationToken)
    {
        switch (fault.Kind)
        {
            case FaultKind.ExecutorKill:
            case FaultKind.ExecutorPause:
            {
                var (node, detail) = await ChooseExecutorAsync(fault, latestStart, cancellationToken).ConfigureAwait(false);
                if (node is null)
                {
                    Print(phaseStart, $"{fault.Kind}: no healthy executor to hit; skipped");
                    return null;
                }

                var started = time.GetUtcNow();
                Func<Task> recover;
                if (fault.Kind == FaultKind.ExecutorKill)
                {
                    await node.KillAsync().ConfigureAwait(false);
                    recover = () =>
                    {
                        node.Start();
                        return Task.CompletedTask;
                    };
                    Print(phaseStart, $"SIGKILL executor {node.Name} ({detail}); restart in {fault.Hold.TotalSeconds:0} s");
                }
                else
                {
                    node.Pause();
                    recover = () =>
                    {
                        node.Resume();
                        return Task.CompletedTask;
                    };
                    Print(phaseStart, $"SIGSTOP executor {node.Name} ({detail}); SIGCONT in {fault.Hold.TotalSeconds:0} s");
                }

                return (new FaultEvent(fault.Kind, node.Name, started, null, [node.Name], detail), recover);
            }

            case FaultKind.LeaderKill:
            {
                var leader = await WaitForLeaderAsync(cancellationToken).ConfigureAwait(false);
                if (leader is null)
                {
                    Print(phaseStart, "LeaderKill: no leader found within 20 s; skipped");
                    return null;
                }

                var cut = fleet.AttachedTo(leader).Select(n => n.Name).ToList();
                var started = time.GetUtcNow();
                await leader.KillAsync().ConfigureAwait(false);
                var detail = $"executors on it: {(cut.Count == 0 ? "none" : string.Join(", ", cut))}";
                Print(phaseStart, $"SIGKILL Consul leader {leader.Name} ({detail}); restart in {fault.Hold.TotalSeconds:0} s");
                return (new FaultEvent(fault.Kind, leader.Name, started, null, cut, detail), () =>
                {
                    leader.Start();
                    return Task.CompletedTask;
                });
            }

            case FaultKind.FollowerRestart:
            {
                var leader = await WaitForLeaderAsync(cancellationToken).ConfigureAwait(false);
                var follower = cluster.Servers.FirstOrDefault(s => s.IsRunning && s != leader);
                if (follower is null)
                {
                    Print(phaseStart, "FollowerRestart: no running follower; skipped");
                    return null;
                }

                var cut = fleet.AttachedTo(follower).Select(n => n.Name).ToList();
                var started = time.GetUtcNow();
                await follower.StopAsync().ConfigureAwait(false);
                var detail = $"leader {leader?.Name ?? "unknown"}; executors on it: {(cut.Count == 0 ? "none" : string.Join(", ", cut))}";
                Print(phaseStart, $"SIGTERM Consul follower {follower.Name} ({detail}); start in {fault.Hold.TotalSeconds:0} s");
                return (new FaultEvent(fault.Kind, follower.Name, started, null, cut, detail), () =>
                {
                    follower.Start();
                    return Task.CompletedTask;
                });
            }

            default:
                throw new ArgumentOutOfRangeException(nameof(fault), fault.Kind, "unknown fault");
        }
    }

    private async Task<ConsulClusterServer?> WaitForLeaderAsync(CancellationToken cancellationToken)
    {
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
                var healthy = fleet.Nodes.Where(n => n.IsRunning && !n.IsPaused).ToList();
                if (holder is { } record && healthy.FirstOrDefault(n => n.Name == record.Node) is { } node)
                {
                    var age = time.GetUtcNow() - (record.StartedAt ?? DateTimeOffset.MinValue);
                    if (fault.MaxRunAge is not { } max || age <= max)
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

        var candidates = fleet.Nodes.Where(n => n.IsRunning && !n.IsPaused).ToList();
        if (candidates.Count == 0)
        {
            return (null, "");
        }

        var chosen = candidates[nextVictim++ % candidates.Count];
        return (chosen, fault.PreferHolderOf is null ? "in turn" : $"no fitting holder of {@namespace}/{fault.PreferHolderOf}; in turn");
    }

    private async Task<RunRecord?> HolderOfAsync(string task, CancellationToken cancellationToken)
    {
        foreach (var server in cluster.Servers.Where(s => s.IsRunning))
        {
            using var client = server.CreateClient();
            try
            {
                var pair = (await client.Kv.GetAsync(layout.RunKey(@namespace, task), QueryOptions.ConsistentRead, cancellationToken).ConfigureAwait(false)).Value;
                var record = pair is null ? null : StateJson.TryDeserialize<RunRecord>(pair.ValueAsString());
                return record is { IsRunning: true } ? record with { Fence = (long)pair!.ModifyIndex } : null;
            }
            catch (ConsulException)
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
        _ => $"Consul follower {fault.Target} started again",
    };

    private void Print(DateTimeOffset phaseStart, string message)
    {
        var now = time.GetUtcNow();
        output.WriteLine($"[{(now - phaseStart).TotalSeconds,6:0.0} s  {now:HH:mm:ss.fff}Z] fault: {message}");
    }
}
