using Dtask.Core.State;

namespace Dtask.Core.Tests.State;

public class StateContractTests
{
    [Fact]
    public void Keys_of_one_task_live_under_the_prefix()
    {
        var layout = new KvLayout("dtask");

        Assert.Equal("dtask/", layout.Prefix);
        Assert.Equal("dtask/tasks/prod/backup", layout.TaskKey("prod", "backup"));
        Assert.Equal("dtask/state/prod/backup/lock", layout.LockKey("prod", "backup"));
        Assert.Equal("dtask/state/prod/backup/run", layout.RunKey("prod", "backup"));
        Assert.Equal("dtask/state/prod/backup/history/1795829400", layout.HistoryKey("prod", "backup", 1795829400));
        Assert.Equal("dtask/nodes/node-a", layout.NodeKey("node-a"));
        Assert.Equal("dtask/control/prod/backup/trigger/t-1", layout.TriggerKey("prod", "backup", "t-1"));
        Assert.Equal("dtask/control/prod/backup/stop/1795829400-abc", layout.StopKey("prod", "backup", "1795829400-abc"));
        Assert.Equal("dtask/state/prod/backup/history/manual/00000000000000000042", layout.ManualHistoryKey("prod", "backup", 42));
    }

    [Fact]
    public void A_manual_run_is_kept_apart_from_the_slots_and_control_keys_split_by_kind()
    {
        var layout = new KvLayout("dtask");
        var manual = new RunRecord { Slot = 1795829400, RunId = "r", Node = "a", State = RunState.Succeeded, Trigger = "t-1", TriggerIndex = 42 };

        Assert.Equal(layout.ManualHistoryKey("prod", "backup", 42), layout.HistoryKeyOf("prod", "backup", manual));
        Assert.Equal(layout.HistoryKey("prod", "backup", 1795829400), layout.HistoryKeyOf("prod", "backup", manual with { Trigger = null, TriggerIndex = null }));
        Assert.True(KvLayout.TrySplitControlKey(layout.TriggerKey("prod", "backup", "t-1"), layout.ControlPrefix, out var ns, out var name, out var action, out var id));
        Assert.Equal(("prod", "backup", ControlAction.Trigger, "t-1"), (ns, name, action, id));
        Assert.True(KvLayout.TrySplitControlKey(layout.StopKey("prod", "backup", "r-1"), layout.ControlPrefix, out _, out _, out action, out id));
        Assert.Equal((ControlAction.Stop, "r-1"), (action, id));
        Assert.False(KvLayout.TrySplitControlKey("dtask/control/prod/backup", layout.ControlPrefix, out _, out _, out _, out _));
        Assert.False(KvLayout.TrySplitControlKey("dtask/control/.watch", layout.ControlPrefix, out _, out _, out _, out _));
        Assert.False(KvLayout.TrySplitControlKey("dtask/control/prod/backup/other/x", layout.ControlPrefix, out _, out _, out _, out _));
    }

    public static TheoryData<string, bool, string, string> TaskKeys => new()
    {
        { "dtask/tasks/prod/backup", true, "prod", "backup" },
        { "dtask/tasks/prod/", false, "", "" },
        { "dtask/tasks/prod", false, "", "" },
        { "dtask/tasks//backup", false, "", "" },
        { "dtask/tasks/prod/backup/extra", false, "", "" },
        { "dtask/state/prod/backup", false, "", "" },
    };

    [Theory]
    [MemberData(nameof(TaskKeys))]
    public void A_task_key_splits_into_namespace_and_name_only_when_it_is_exactly_two_levels_deep(string key, bool ok, string ns, string name)
    {
        var layout = new KvLayout();

        Assert.Equal(ok, KvLayout.TrySplitTaskKey(key, layout.TasksPrefix, out var gotNs, out var gotName));
        Assert.Equal(ns, gotNs);
        Assert.Equal(name, gotName);
    }

    [Fact]
    public void A_run_record_round_trips_with_its_state_words()
    {
        var record = new RunRecord
        {
            Slot = 1795829400,
            RunId = "r-1",
            Node = "node-a",
            Session = "5f0c",
            Fence = 42,
            State = RunState.TimedOut,
            Reason = "timeout",
            StartedAt = DateTimeOffset.Parse("2026-11-27T04:10:00Z", System.Globalization.CultureInfo.InvariantCulture),
            ExitCode = null,
            Attempt = 2,
            OutputTail = "line \"one\"\nline two ✓",
        };

        var json = StateJson.Serialize(record);

        Assert.Contains("\"state\":\"timedOut\"", json, StringComparison.Ordinal);
        Assert.Contains("\"startedAt\":\"2026-11-27T04:10:00Z\"", json, StringComparison.Ordinal);
        Assert.DoesNotContain("exitCode", json, StringComparison.Ordinal);
        Assert.Equal(record, StateJson.Deserialize<RunRecord>(json));
        Assert.Equal(json, StateJson.Serialize(StateJson.Deserialize<RunRecord>(json)));
    }

    [Fact]
    public void A_value_that_is_not_a_record_reads_as_null()
    {
        Assert.Null(StateJson.TryDeserialize<RunRecord>("{not json"));
        Assert.Null(StateJson.TryDeserialize<RunRecord>(""));
        Assert.Null(StateJson.TryDeserialize<RunRecord>("{\"slot\":1}"));
    }

    [Fact]
    public void A_control_request_round_trips()
    {
        var request = new ControlRequest
        {
            Action = ControlAction.Stop,
            Id = "c-1",
            RequestedAt = DateTimeOffset.UnixEpoch,
            RequestedBy = "node-b",
            RunId = "r-1",
        };

        var json = StateJson.Serialize(request);

        Assert.Contains("\"action\":\"stop\"", json, StringComparison.Ordinal);
        Assert.Equal(request, StateJson.Deserialize<ControlRequest>(json));
    }
}
