using System.Diagnostics;
using System.Globalization;
using System.Text;
using Dtask.Bench.Processes;
using Dtask.Consul;
using Dtask.Consul.Errors;
using Dtask.Consul.Kv;

namespace Dtask.Bench.Baselines;

/// <summary>
/// The original project's period check, faithfully: at each timer tick, for each task, read the last run's timestamp
/// (a GET of the key's value), then the key's index (a second GET), and when at least a period has passed since that
/// timestamp write the current time with <c>?cas=index</c>; run the command when the CAS succeeded. The index comes from
/// a later read than the value, so two nodes can both see an old timestamp and both win a CAS: a duplicate. The
/// original ran <c>curl</c> for each request; here the requests are made in-process, which only makes the window
/// between them narrower.
/// </summary>
internal sealed class PeriodCheckNode(string node, ConsulClient client, string prefix, IReadOnlyList<string> tasks,
    IReadOnlyList<string> command, OwnedProcesses processes, long periodSeconds = 1) : IBaselineNode
{
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
                runs.Add(CheckAsync(task, slot, cancellationToken));
            }
        }

        await Task.WhenAll(runs);
    }

    private async Task CheckAsync(string task, long slot, CancellationToken cancellationToken)
    {
        var key = $"{prefix}period/{task}";
        try
        {
            var value = (await client.Kv.GetAsync(key, cancellationToken: cancellationToken)).Value?.ValueAsString();
            var index = (await client.Kv.GetAsync(key, cancellationToken: cancellationToken)).Value?.ModifyIndex ?? 0;
            var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
            var last = long.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var stored) ? stored : 0;
            if (now - last < periodSeconds)
            {
                return;
            }

            var won = (await client.Kv.PutAsync(key, Encoding.UTF8.GetBytes(now.ToString(CultureInfo.InvariantCulture)), new KvPutOptions { Cas = index }, cancellationToken)).Value;
            if (won)
            {
                await RunAsync(task, slot, cancellationToken);
            }
        }
        catch (ConsulException)
        {
            // The original script gave up on a failed curl, too.
        }
    }

    private async Task RunAsync(string task, long slot, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(command[0]) { UseShellExecute = false };
        foreach (var argument in command.Skip(1))
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["DTASK_TASK"] = task;
        start.Environment["DTASK_SLOT"] = slot.ToString(CultureInfo.InvariantCulture);
        start.Environment["DTASK_NODE"] = node;
        start.Environment["LC_ALL"] = "C";
        using var process = processes.Start(start);
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
