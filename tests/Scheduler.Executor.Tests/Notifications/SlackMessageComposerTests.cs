using Dtask.Executor.Notifications.Slack;
using Dtask.Executor.Tests.Support;

namespace Dtask.Executor.Tests.Notifications;

public class SlackMessageComposerTests
{
    [Fact]
    public void Mrkdwn_control_characters_are_escaped()
    {
        Assert.Equal("a &lt;b&gt; &amp;amp; &lt;!channel&gt;", SlackMessageComposer.Escape("a <b> &amp; <!channel>"));
    }

    [Fact]
    public void Start_names_task_node_slot_and_command()
    {
        var text = SlackMessageComposer.Started(Runs.Backup() with { Command = "sh -c 'a > b && c'" }).Text;

        Assert.Equal(
            ":arrow_forward: *ops/backup* started on `node-a`\n"
            + "slot 2025-01-01 12:00:00Z (1735732800), run `ops-backup-1735732800-1`, fired 1.2s after the slot\n"
            + "```\nsh -c 'a &gt; b &amp;&amp; c'\n```",
            text);
    }

    [Fact]
    public void Failure_carries_duration_exit_code_and_the_output_tail_in_a_code_block()
    {
        var outcome = new RunOutcome(RunResult.Failed, TimeSpan.FromSeconds(125), 2, "line 1\nerror: <x> ```fence```\n");
        var text = SlackMessageComposer.Finished(Runs.Backup(), outcome).Text;

        Assert.StartsWith(":x: *ops/backup* failed on `node-a` after 2m 05s, exit code 2\n", text, StringComparison.Ordinal);
        Assert.EndsWith("```\nline 1\nerror: &lt;x&gt; `\u200B``fence`\u200B``\n```", text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0.25, "250ms")]
    [InlineData(12.34, "12.3s")]
    [InlineData(245, "4m 05s")]
    [InlineData(7384, "2h 03m 04s")]
    public void Durations_read_like_a_person_would_write_them(double seconds, string expected) =>
        Assert.Equal(expected, SlackMessageComposer.Duration(TimeSpan.FromSeconds(seconds)));
}
