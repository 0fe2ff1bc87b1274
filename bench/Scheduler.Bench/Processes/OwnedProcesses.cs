using System.Collections.Concurrent;
using System.Diagnostics;

namespace Dtask.Bench.Processes;

/// <summary>
/// Every process a scenario started; disposing kills those still running, with their whole trees, so nothing is left
/// behind on success, failure or Ctrl-C.
/// </summary>
internal sealed class OwnedProcesses : IAsyncDisposable
{
    private readonly ConcurrentDictionary<int, Process> running = new();

    /// <summary>Starts <paramref name="start"/> and keeps it until it exits.</summary>
    public Process Start(ProcessStartInfo start)
    {
        ArgumentNullException.ThrowIfNull(start);
        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        process.Exited += (_, _) => running.TryRemove(process.Id, out _);
        process.Start();
        if (!process.HasExited)
        {
            running[process.Id] = process;
        }

        return process;
    }

    /// <summary>How many are still running.</summary>
    public int Count => running.Count;

    /// <summary>Waits up to <paramref name="grace"/> for every process to exit by itself, then kills the rest.</summary>
    public async Task DrainAsync(TimeSpan grace)
    {
        using var timeout = new CancellationTokenSource(grace);
        try
        {
            await Task.WhenAll(running.Values.Select(p => WaitAsync(p, timeout.Token)));
        }
        catch (OperationCanceledException)
        {
            // Killed below.
        }

        await DisposeAsync();
    }

    /// <summary>Waits for <paramref name="process"/>; one its owner disposed already (its exit not yet seen here) is gone.</summary>
    private static async Task WaitAsync(Process process, CancellationToken cancellationToken)
    {
        try
        {
            await process.WaitForExitAsync(cancellationToken);
        }
        catch (InvalidOperationException)
        {
            // Disposed by its owner after it exited.
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        foreach (var process in running.Values)
        {
            try
            {
                if (!process.HasExited)
                {
                    process.Kill(entireProcessTree: true);
                }

                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                await process.WaitForExitAsync(timeout.Token);
            }
            catch (Exception e) when (e is InvalidOperationException or OperationCanceledException or System.ComponentModel.Win32Exception)
            {
                // Gone already, or beyond reach.
            }
        }

        running.Clear();
    }
}
