namespace Dtask.Bench.Baselines;

/// <summary>One node of a baseline setup: it tries to run every task at every slot of a window, as cron would make it.</summary>
internal interface IBaselineNode
{
    /// <summary>The node's name (<c>DTASK_NODE</c> of the runs it makes).</summary>
    string Node { get; }

    /// <summary>Runs the slots from <paramref name="firstSlot"/> to <paramref name="lastSlot"/> (Unix seconds, one a second) and returns when they are all done.</summary>
    Task RunAsync(long firstSlot, long lastSlot, CancellationToken cancellationToken);
}
