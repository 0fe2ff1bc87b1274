using System.Diagnostics;
using System.Text;
using Dtask.Core.State;

namespace Dtask.Core.Tests.State;

/// <summary>Whatever a KV value holds, decoding it as a run record, node record or control request never throws.</summary>
public class GarbageStateTests
{
    public static TheoryData<string> Garbage => new()
    {
        "",
        "   ",
        "not json",
        Encoding.UTF8.GetString([0xff, 0xfe, 0xc3, 0x28, 0x00, 0x7b]),
        "42",
        "\"text\"",
        "null",
        "true",
        "[]",
        "[{\"slot\":1}]",
        "{}",
        "{\"slot\":\"one\",\"runId\":\"r\",\"node\":\"a\",\"state\":\"running\"}",
        "{\"slot\":1,\"runId\":null,\"node\":\"a\",\"state\":\"running\"}",
        "{\"slot\":1,\"runId\":\"r\",\"node\":null,\"state\":\"running\"}",
        "{\"slot\":1,\"runId\":\"r\",\"node\":\"a\",\"state\":\"exploded\"}",
        "{\"slot\":1,\"runId\":\"r\",\"node\":\"a\",\"state\":\"running\",\"startedAt\":\"yesterday\"}",
        "{\"slot\":1e400,\"runId\":\"r\",\"node\":\"a\",\"state\":\"running\"}",
        "{\"slot\":1,\"runId\":{\"a\":[1,2]},\"node\":\"a\",\"state\":\"running\"}",
        "{\"node\":null}",
        "{\"node\":\"a\",\"version\":\"1\",\"startedAt\":\"2026-01-01T00:00:00Z\",\"labels\":null}",
        "{\"node\":\"a\",\"labels\":[1,2]}",
        "{\"action\":\"trigger\",\"id\":null,\"requestedAt\":\"2026-01-01T00:00:00Z\"}",
        "{\"action\":7,\"id\":\"x\",\"requestedAt\":\"2026-01-01T00:00:00Z\"}",
        "{\"action\":\"trigger\",\"id\":\"x\",\"requestedAt\":12}",
        "{\"slot\":1,\"runId\":\"r\",\"node\":\"a\",\"state\":\"running\"",
        new string('[', 100_000),
        new string('[', 100_000) + new string(']', 100_000),
        "{\"runId\":" + string.Concat(Enumerable.Repeat("{\"a\":", 50_000)) + "1" + new string('}', 50_000) + "}",
    };

    [Theory]
    [MemberData(nameof(Garbage))]
    public void Garbage_decodes_to_nothing_with_a_reason(string value)
    {
        Assert.Null(StateJson.TryDecode<RunRecord>(value, out var runProblem));
        Assert.Null(StateJson.TryDecode<NodeRecord>(value, out var nodeProblem));
        Assert.Null(StateJson.TryDecode<ControlRequest>(value, out var controlProblem));
        foreach (var problem in new[] { runProblem, nodeProblem, controlProblem })
        {
            Assert.False(string.IsNullOrWhiteSpace(problem));
            Assert.True(problem.Length < 300, problem);
            Assert.DoesNotContain("   at ", problem, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Deep_nesting_fails_fast_at_the_depth_limit()
    {
        var deep = "{\"unknown\":" + new string('[', 5_000_000);
        var watch = Stopwatch.StartNew();

        Assert.Null(StateJson.TryDecode<RunRecord>(deep, out var problem));

        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(1), $"took {watch.Elapsed}");
        Assert.Contains("depth", problem, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void A_huge_value_is_read_or_refused_without_throwing()
    {
        var huge = "{\"slot\":1,\"runId\":\"r\",\"node\":\"a\",\"state\":\"failed\",\"outputTail\":\"" + new string('x', 8_000_000) + "\"}";

        var record = StateJson.TryDecode<RunRecord>(huge, out _);

        Assert.Equal(8_000_000, record?.OutputTail?.Length);
        Assert.Null(StateJson.TryDecode<NodeRecord>("{\"node\":\"" + new string('\\', 8_000_001) + "\"}", out _));
    }

    [Fact]
    public void Good_values_still_decode()
    {
        var run = new RunRecord { Slot = 5, RunId = "r", Node = "a", State = RunState.Succeeded, StartedAt = DateTimeOffset.UnixEpoch };
        var node = new NodeRecord { Node = "a", Version = "1", StartedAt = DateTimeOffset.UnixEpoch, Labels = new Dictionary<string, string> { ["zone"] = "z1" } };

        Assert.Equal(run, StateJson.TryDecode<RunRecord>(StateJson.Serialize(run), out _));
        Assert.Equal("z1", StateJson.TryDecode<NodeRecord>(StateJson.Serialize(node), out _)?.Labels["zone"]);
    }

    [Fact]
    public void A_bad_key_is_reported_once_per_value()
    {
        var keys = new UnreadableKeys();

        Assert.True(keys.FirstTime("dtask/nodes/x", 10));
        Assert.False(keys.FirstTime("dtask/nodes/x", 10));
        Assert.True(keys.FirstTime("dtask/nodes/x", 11));
        keys.Readable("dtask/nodes/x");
        Assert.True(keys.FirstTime("dtask/nodes/x", 11));
        keys.KeepOnly(new HashSet<string>());
        Assert.True(keys.FirstTime("dtask/nodes/x", 11));
    }
}
