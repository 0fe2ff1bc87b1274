using Dtask.Executor.Notifications;
using Dtask.Executor.Tests.Support;

namespace Dtask.Executor.Tests.Notifications;

public class CompositeRunNotifierTests
{
    [Fact]
    public async Task A_throwing_notifier_neither_reaches_the_caller_nor_silences_the_others()
    {
        var recorder = new RecordingNotifier();
        var log = new CapturingSink();
        await using (var composite = new CompositeRunNotifier([new ThrowingNotifier(), recorder], log.CreateLogger()))
        {
            composite.RunStarted(Runs.Backup());
            composite.RunFinished(Runs.Backup(), new RunOutcome(RunResult.Succeeded, TimeSpan.Zero, 0, ""));
            composite.SlotMissed(new MissedSlot("ops", "backup", "node-a", 1, "x"));
            composite.LockLost(Runs.Backup(), "x");
        }

        Assert.Equal(["start", "finish", "missed", "lost", "disposed"], recorder.Calls);
        Assert.Equal(5, log.Events.Count);
    }

    private sealed class ThrowingNotifier : IRunNotifier
    {
        public void RunStarted(RunContext run) => throw new InvalidOperationException();

        public void RunFinished(RunContext run, RunOutcome outcome) => throw new InvalidOperationException();

        public void SlotMissed(MissedSlot slot) => throw new InvalidOperationException();

        public void LockLost(RunContext run, string reason) => throw new InvalidOperationException();

        public ValueTask DisposeAsync() => throw new InvalidOperationException();
    }

    private sealed class RecordingNotifier : IRunNotifier
    {
        public List<string> Calls { get; } = [];

        public void RunStarted(RunContext run) => Calls.Add("start");

        public void RunFinished(RunContext run, RunOutcome outcome) => Calls.Add("finish");

        public void SlotMissed(MissedSlot slot) => Calls.Add("missed");

        public void LockLost(RunContext run, string reason) => Calls.Add("lost");

        public ValueTask DisposeAsync()
        {
            Calls.Add("disposed");
            return ValueTask.CompletedTask;
        }
    }
}
