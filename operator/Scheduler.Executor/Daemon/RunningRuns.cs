using Dtask.Core.Model;
using Dtask.Executor.Claims;
using Dtask.Executor.Processes;

namespace Dtask.Executor.Daemon;

/// <summary>The runs this executor is firing, by run id, with the <see cref="StopRequest"/> that stops each one's child.</summary>
public sealed class RunningRuns
{
    private readonly Lock gate = new();
    private readonly Dictionary<string, (TaskId Task, StopRequest Stop)> runs = new(StringComparer.Ordinal);

    /// <summary>How many runs are in progress.</summary>
    public int Count
    {
        get
        {
            lock (gate)
            {
                return runs.Count;
            }
        }
    }

    /// <summary>Adds a run about to be claimed.</summary>
    public void Add(TaskId task, string runId, StopRequest stop)
    {
        lock (gate)
        {
            runs[runId] = (task, stop);
        }
    }

    /// <summary>Removes a run that is over.</summary>
    public void Remove(string runId)
    {
        lock (gate)
        {
            runs.Remove(runId);
        }
    }

    /// <summary>Stops the child of <paramref name="runId"/> of <paramref name="task"/>; false when this executor does not run it.</summary>
    public bool TryStop(TaskId task, string runId, StopReason reason)
    {
        StopRequest? stop;
        lock (gate)
        {
            stop = runs.TryGetValue(runId, out var run) && run.Task == task ? run.Stop : null;
        }

        return stop?.Stop(reason) ?? false;
    }

    /// <summary>Stops every child, with <paramref name="reason"/>.</summary>
    public void StopAll(StopReason reason)
    {
        List<StopRequest> all;
        lock (gate)
        {
            all = [.. runs.Values.Select(r => r.Stop)];
        }

        foreach (var stop in all)
        {
            stop.Stop(reason);
        }
    }
}
