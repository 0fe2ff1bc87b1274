using Serilog;

namespace Dtask.Executor.Notifications;

/// <summary>
/// Fans each event out to several notifiers. A notifier that throws is logged and skipped, so one broken
/// channel cannot silence the others or reach the run.
/// </summary>
public sealed class CompositeRunNotifier : IRunNotifier
{
    private readonly IRunNotifier[] notifiers;
    private readonly ILogger logger;

    /// <summary>Creates the composite; it owns the notifiers.</summary>
    /// <param name="notifiers">The notifiers.</param>
    /// <param name="logger">For failures of a notifier.</param>
    public CompositeRunNotifier(IEnumerable<IRunNotifier> notifiers, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(notifiers);
        ArgumentNullException.ThrowIfNull(logger);
        this.notifiers = [.. notifiers];
        this.logger = logger;
    }

    /// <summary>The notifiers events go to.</summary>
    public IReadOnlyList<IRunNotifier> Notifiers => notifiers;

    /// <inheritdoc />
    public void RunStarted(RunContext run) => Each(n => n.RunStarted(run), nameof(RunStarted));

    /// <inheritdoc />
    public void RunFinished(RunContext run, RunOutcome outcome) => Each(n => n.RunFinished(run, outcome), nameof(RunFinished));

    /// <inheritdoc />
    public void SlotMissed(MissedSlot slot) => Each(n => n.SlotMissed(slot), nameof(SlotMissed));

    /// <inheritdoc />
    public void LockLost(RunContext run, string reason) => Each(n => n.LockLost(run, reason), nameof(LockLost));

    /// <summary>Flushes and disposes every notifier, concurrently, each within its own deadline.</summary>
    /// <returns>A task that completes when all are done.</returns>
    public async ValueTask DisposeAsync()
    {
        await Task.WhenAll(notifiers.Select(DisposeOneAsync)).ConfigureAwait(false);
    }

    private async Task DisposeOneAsync(IRunNotifier notifier)
    {
        try
        {
            await notifier.DisposeAsync().ConfigureAwait(false);
        }
#pragma warning disable CA1031 // A notifier's shutdown failure must not stop the executor's.
        catch (Exception e)
#pragma warning restore CA1031
        {
            logger.Warning("{Notifier:l} failed to shut down: {Error:l}", notifier.GetType().Name, e.GetType().Name);
        }
    }

    private void Each(Action<IRunNotifier> call, string eventName)
    {
        foreach (var notifier in notifiers)
        {
            try
            {
                call(notifier);
            }
#pragma warning disable CA1031 // Notifications never fail a run.
            catch (Exception e)
#pragma warning restore CA1031
            {
                logger.Warning("{Notifier:l} failed on {Event:l}: {Error:l}", notifier.GetType().Name, eventName, e.GetType().Name);
            }
        }
    }
}
