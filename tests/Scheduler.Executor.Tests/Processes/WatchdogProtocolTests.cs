using Dtask.Executor.Processes;

namespace Dtask.Executor.Tests.Processes;

public sealed class WatchdogProtocolTests
{
    public static TheoryData<string, WatchdogVerb, long> Commands => new()
    {
        { "+4242", WatchdogVerb.Register, 4242 },
        { "-4242", WatchdogVerb.Unregister, 4242 },
        { "  +17\r", WatchdogVerb.Register, 17 },
        { "lease 8500", WatchdogVerb.Lease, 8500 },
        { "lease 0", WatchdogVerb.Lease, 0 },
        { "exit", WatchdogVerb.Exit, 0 },
        { "exit\r", WatchdogVerb.Exit, 0 },
    };

    [Theory]
    [MemberData(nameof(Commands))]
    public void Commands_parse_and_print_back(string text, WatchdogVerb verb, long value)
    {
        var line = WatchdogProtocol.Parse(text);
        Assert.Equal(new WatchdogLine(verb, value), line);
        Assert.Equal(text.Trim(), line!.Value.ToString());
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("+")]
    [InlineData("+1")] // init
    [InlineData("+0")]
    [InlineData("-1")] // kill(-(-1)) would mean every process
    [InlineData("+-5")]
    [InlineData("+ 5")]
    [InlineData("+5x")]
    [InlineData("+99999999999")] // above any pid
    [InlineData("lease")]
    [InlineData("lease -5")]
    [InlineData("lease 1.5")]
    [InlineData("lease 9999999999999999999999")]
    [InlineData("LEASE 5")]
    [InlineData("exit now")]
    [InlineData("quit")]
    public void Anything_else_is_not_a_command(string? text) => Assert.Null(WatchdogProtocol.Parse(text));
}
