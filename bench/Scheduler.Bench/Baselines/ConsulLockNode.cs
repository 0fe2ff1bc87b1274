using System.Diagnostics;
using System.Globalization;
using Dtask.Bench.Processes;

namespace Dtask.Bench.Baselines;

/// <summary>
/// The common setup that dtask replaces: cron on every node runs each job through
/// <c>consul lock -n=1 -timeout=500ms -shell=false PREFIX/JOB CMD...</c> at each slot. The lock stops two runs from
/// overlapping, but it does not know slots: a node that gets the lock after the winner has finished runs the same slot
/// again. The timeout (half the period) makes a node give up before the next slot.
/// </summary>
internal sealed class ConsulLockNode(string node, string consulBinary, string consulAddress, string prefix, IReadOnlyList<string> tasks,
    IReadOnlyList<string> command, OwnedProcesses processes) : IBaselineNode
{
    /// <summary>The flags used, for the report.</summary>
    public const string Flags = "-n=1 -timeout=500ms -shell=false";

    /// <inheritdoc />
    public string Node => node;

    /// <inheritdoc />
    public async Task RunAsync(long firstSlot, long lastSlot, CancellationToken cancellationToken)
    {
        var runs = new List<Task>();
        for (var slot = firstSlot; slot <= lastSlot; slot++)
        {
            await Workload.SlotClock.UntilAsync(slot, cancellationToken);
            foreach (var task in tasks)
            {
                runs.Add(RunOneAsync(task, slot, cancellationToken));
            }
        }

        await Task.WhenAll(runs);
    }

    private async Task RunOneAsync(string task, long slot, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(consulBinary) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in new[] { "lock", "-http-addr=" + consulAddress, "-n=1", "-timeout=500ms", "-shell=false", $"{prefix}locks/{task}" }.Concat(command))
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["DTASK_TASK"] = task;
        start.Environment["DTASK_SLOT"] = slot.ToString(CultureInfo.InvariantCulture);
        start.Environment["DTASK_NODE"] = node;
        start.Environment["LC_ALL"] = "C";
        start.Environment.Remove("CONSUL_HTTP_TOKEN");
        using var process = processes.Start(start);
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(TimeSpan.FromSeconds(30));
        try
        {
            await process.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // Left to OwnedProcesses to kill.
        }
    }
}
