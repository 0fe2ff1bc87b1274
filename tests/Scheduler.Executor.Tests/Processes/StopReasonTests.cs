using Dtask.Executor.Claims;
using Dtask.Executor.Processes;

namespace Dtask.Executor.Tests.Processes;

public sealed class StopReasonTests
{
    [Fact]
    public void Each_reason_is_written_into_the_run_record_as_before()
    {
        (StopReason Reason, string Text)[] cases =
        [
            (StopReason.LockLost(), "lock-lost"),
            (StopReason.LockLost("the lock was no longer held when retrying"), "lock-lost: the lock was no longer held when retrying"),
            (StopReason.SessionLost("session 1234 was invalidated"), "session-lost: session 1234 was invalidated"),
            (StopReason.Replaced, "replaced"),
            (StopReason.Shutdown(), "shutdown"),
            (StopReason.Shutdown("SIGTERM"), "shutdown: SIGTERM"),
            (StopReason.StoppedBy(StopReason.Replaced), "stopped: replaced"),
            (StopReason.StoppedBy(StopReason.Shutdown("SIGINT")), "stopped: shutdown: SIGINT"),
            (StopReason.StoppedBy(null), "stopped: requested"),
            (StopReason.Other("test over"), "test over"),
        ];

        Assert.All(cases, c => Assert.Equal(c.Text, c.Reason.Text));
        Assert.All(cases, c => Assert.Equal(c.Text, c.Reason.ToString()));
    }

    [Fact]
    public void A_caller_stop_passed_on_is_not_a_lost_lock_even_when_the_caller_lost_its_own()
    {
        var passedOn = StopReason.StoppedBy(StopReason.LockLost("held elsewhere"));

        Assert.Equal(StopCause.Stopped, passedOn.Cause);
        Assert.Equal("stopped: lock-lost: held elsewhere", passedOn.Text);
    }

    [Fact]
    public void The_first_stop_wins_and_keeps_its_cause()
    {
        using var stop = new StopRequest();

        Assert.True(stop.Stop(StopReason.LockLost("key deleted")));
        Assert.False(stop.Stop(StopReason.Shutdown()));

        Assert.Equal(StopCause.LockLost, stop.Reason?.Cause);
        Assert.Equal("lock-lost: key deleted", stop.Reason?.Text);
        Assert.True(stop.Token.IsCancellationRequested);
    }

    [Fact]
    public void The_trigger_expired_reason_names_how_long_the_task_was_busy()
    {
        Assert.Equal("trigger-expired: the task was busy for 10 min 00 s", RunReasons.TriggerExpired(TimeSpan.FromMinutes(10)));
    }
}
