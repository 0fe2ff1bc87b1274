using Dtask.Core.Model;
using Dtask.Core.Validation;

namespace Dtask.Core.Tests.Validation;

/// <summary>Size limits, checked on typed tasks (the entry point of tasks built in code or read from KV).</summary>
public sealed class LimitTests
{
    private static ScheduledTask Task(ScheduledTaskSpec spec) => new()
    {
        Metadata = new ObjectMeta { Name = "big" },
        Spec = spec,
    };

    private static readonly ScheduledTaskSpec Base = new() { Every = "1m", Command = ["x"] };

    public static TheoryData<string, ScheduledTaskSpec, string[]> Rows() => new()
    {
        { "a valid spec", Base, [] },
        { "256 arguments are allowed", Base with { Command = [.. Enumerable.Repeat("a", 256)] }, [] },
        { "257 arguments", Base with { Command = [.. Enumerable.Repeat("a", 257)] }, ["spec.command: has 257 entries; at most 256 are allowed"] },
        { "an argument of 4097 characters", Base with { Command = ["x", new string('a', 4097)] }, ["spec.command[1]: is 4097 characters; at most 4096 are allowed"] },
        { "an argument with a NUL", Base with { Command = ["x", "a\0b"] }, ["spec.command[1]: must not contain a NUL character"] },
        { "a shell script of 16385 characters", Base with { Command = null, Shell = new string('a', 16385) }, ["spec.shell: is 16385 characters; at most 16384 are allowed"] },
        { "129 variables", Base with { Env = [.. Enumerable.Range(0, 129).Select(i => new EnvVar { Name = $"V{i}" })] }, ["spec.env: has 129 entries; at most 128 are allowed"] },
        { "a value of 8193 characters", Base with { Env = [new EnvVar { Name = "V", Value = new string('a', 8193) }] }, ["spec.env[0].value: is 8193 characters; at most 8192 are allowed"] },
        { "33 node selector entries", Base with { NodeSelector = Enumerable.Range(0, 33).ToDictionary(i => $"k{i}", _ => "v") }, ["spec.nodeSelector: has 33 entries; at most 32 are allowed"] },
        { "33 tags", Base with { Notify = new NotifySpec { Datadog = new DatadogNotify { Tags = [.. Enumerable.Repeat("t", 33)] } } }, ["spec.notify.datadog.tags: has 33 entries; at most 32 are allowed"] },
        {
            "a spec over 64 KiB as JSON",
            Base with { Env = [.. Enumerable.Range(0, 10).Select(i => new EnvVar { Name = $"V{i}", Value = new string('a', 8000) })] },
            ["spec: is 80288 bytes as JSON; at most 65536 bytes (64 KiB) are allowed"]
        },
    };

    [Theory]
    [MemberData(nameof(Rows))]
    public void Sizes_are_bounded(string row, ScheduledTaskSpec spec, string[] expected)
    {
        _ = row;
        Assert.Equal(expected, TaskValidator.Validate(Task(spec)).Select(e => e.ToString()));
    }

    [Fact]
    public void A_typed_task_with_the_wrong_api_version_is_refused() =>
        Assert.Equal(
            ["apiVersion: 'dtask.dev/v1' is not served; use dtask.dev/v1alpha1"],
            TaskValidator.Validate(Task(Base) with { ApiVersion = "dtask.dev/v1" }).Select(e => e.ToString()));
}
