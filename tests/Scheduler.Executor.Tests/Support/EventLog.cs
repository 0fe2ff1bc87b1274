using System.Collections.Concurrent;
using Dtask.Executor.Notifications;

namespace Dtask.Executor.Tests.Support;

/// <summary>A notifier that keeps the events it receives, as "started 1735732800" lines.</summary>
public sealed class EventLog : IRunNotifier
{
    private readonly ConcurrentQueue<string> events = new();

    public IReadOnlyList<string> Events => [.. events];

    public void RunStarted(RunContext run) => events.Enqueue($"started {run.Slot}");

    public void RunFinished(RunContext run, RunOutcome outcome) => events.Enqueue($"finished {run.Slot} {outcome.Result}");

    public void SlotMissed(MissedSlot slot) => events.Enqueue($"missed {slot.Slot}");

    public void LockLost(RunContext run, string reason) => events.Enqueue($"lost {run.Slot}");

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
