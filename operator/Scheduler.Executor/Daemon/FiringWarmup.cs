using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Executor.Claims;

namespace Dtask.Executor.Daemon;

/// <summary>
/// Runs the pure parts of the firing path once at start (ranking, turn, run-record encoding and decoding, key
/// layout), so the first slot does not pay their just-in-time compilation between its fire time and the child's start.
/// </summary>
public static class FiringWarmup
{
    /// <summary>Exercises the firing path's pure code with a made-up task; touches no Consul key.</summary>
    public static void Run(KvLayout layout, ExecutorOptions options)
    {
        ArgumentNullException.ThrowIfNull(layout);
        ArgumentNullException.ThrowIfNull(options);
        var task = new TaskId("warmup", "warmup");
        var order = SlotRanking.ByHash(task, 0, [options.Node, options.Node + "-other"]);
        _ = SlotTurn.Of(Math.Max(0, order.ToList().IndexOf(options.Node)), order.Count, options.Contenders, options.RankDelay, TimeSpan.FromMinutes(1));
        var record = new RunRecord { Slot = 0, RunId = SlotClaimer.NewRunId(0), Node = options.Node, State = RunState.Running, StartedAt = DateTimeOffset.UnixEpoch };
        _ = RunStateStore.Decode(RunStateStore.Encode(record));
        _ = layout.RunKey(task.Namespace, task.Name) + layout.LockKey(task.Namespace, task.Name) + layout.HistoryKey(task.Namespace, task.Name, 0);
    }
}
