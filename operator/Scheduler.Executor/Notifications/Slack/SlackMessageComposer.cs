using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Dtask.Executor.Notifications.Slack;

/// <summary>The JSON body of an incoming-webhook message.</summary>
/// <param name="Text">The message, in Slack mrkdwn, already escaped.</param>
public sealed record SlackMessage([property: JsonPropertyName("text")] string Text)
{
    private static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = false };

    /// <summary>The body as JSON: <c>{"text":"..."}</c>.</summary>
    /// <returns>The JSON text.</returns>
    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);
}

/// <summary>
/// Writes the Slack messages for run events. Every piece of text that comes from a task, a node or a child's
/// output is escaped for mrkdwn (<c>&amp;</c>, <c>&lt;</c>, <c>&gt;</c>), so that it shows as written and cannot
/// form links or mentions; JSON encoding is left to System.Text.Json.
/// </summary>
public static class SlackMessageComposer
{
    /// <summary>A message for a started run: task, node, slot, command.</summary>
    /// <param name="run">The run.</param>
    /// <returns>The message.</returns>
    public static SlackMessage Started(RunContext run)
    {
        ArgumentNullException.ThrowIfNull(run);
        var text = new StringBuilder()
            .Append(":arrow_forward: ").Append(TaskName(run.Namespace, run.Task)).Append(" started on ").Append(Code(run.Node))
            .Append('\n').Append("slot ").Append(Slot(run.SlotTime, run.Slot))
            .Append(", run ").Append(Code(run.RunId))
            .Append(", fired ").Append(Escape(Duration(run.FireDelay))).Append(" after the slot")
            .Append('\n').Append(CodeBlock(run.Command));
        return new SlackMessage(text.ToString());
    }

    /// <summary>A message for a finished run: result, duration, exit code, output tail.</summary>
    /// <param name="run">The run.</param>
    /// <param name="outcome">How it ended.</param>
    /// <returns>The message.</returns>
    public static SlackMessage Finished(RunContext run, RunOutcome outcome)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(outcome);
        var (emoji, verb) = outcome.Result switch
        {
            RunResult.Succeeded => (":white_check_mark:", "succeeded"),
            RunResult.TimedOut => (":hourglass:", "timed out"),
            _ => (":x:", "failed"),
        };
        var exit = outcome.ExitCode is { } code ? "exit code " + code.ToString(CultureInfo.InvariantCulture) : "no exit code";
        var text = new StringBuilder()
            .Append(emoji).Append(' ').Append(TaskName(run.Namespace, run.Task)).Append(' ').Append(verb)
            .Append(" on ").Append(Code(run.Node))
            .Append(" after ").Append(Escape(Duration(outcome.Duration))).Append(", ").Append(exit)
            .Append('\n').Append("slot ").Append(Slot(run.SlotTime, run.Slot)).Append(", run ").Append(Code(run.RunId));
        if (!string.IsNullOrEmpty(outcome.OutputTail))
        {
            text.Append('\n').Append(CodeBlock(outcome.OutputTail));
        }

        return new SlackMessage(text.ToString());
    }

    /// <summary>A message for a missed slot.</summary>
    /// <param name="slot">The slot.</param>
    /// <returns>The message.</returns>
    public static SlackMessage Missed(MissedSlot slot)
    {
        ArgumentNullException.ThrowIfNull(slot);
        var text = new StringBuilder()
            .Append(":warning: ").Append(TaskName(slot.Namespace, slot.Task)).Append(" missed slot ").Append(Slot(slot.SlotTime, slot.Slot))
            .Append(": ").Append(Escape(slot.Reason))
            .Append(" (recorded by ").Append(Code(slot.Node)).Append(')');
        return new SlackMessage(text.ToString());
    }

    /// <summary>A message for a run that lost its lock and was stopped.</summary>
    /// <param name="run">The run.</param>
    /// <param name="reason">Why the lock is lost.</param>
    /// <returns>The message.</returns>
    public static SlackMessage LockLost(RunContext run, string reason)
    {
        ArgumentNullException.ThrowIfNull(run);
        var text = new StringBuilder()
            .Append(":rotating_light: ").Append(TaskName(run.Namespace, run.Task)).Append(" lost its lock on ").Append(Code(run.Node))
            .Append("; the run was stopped: ").Append(Escape(reason ?? ""))
            .Append('\n').Append("slot ").Append(Slot(run.SlotTime, run.Slot)).Append(", run ").Append(Code(run.RunId));
        return new SlackMessage(text.ToString());
    }

    /// <summary>Escapes text for Slack mrkdwn: <c>&amp;</c> → <c>&amp;amp;</c>, <c>&lt;</c> → <c>&amp;lt;</c>, <c>&gt;</c> → <c>&amp;gt;</c>.</summary>
    /// <param name="text">Plain text.</param>
    /// <returns>The escaped text.</returns>
    public static string Escape(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return text.Replace("&", "&amp;", StringComparison.Ordinal)
            .Replace("<", "&lt;", StringComparison.Ordinal)
            .Replace(">", "&gt;", StringComparison.Ordinal);
    }

    /// <summary>A duration the way people read it: <c>850ms</c>, <c>12.3s</c>, <c>4m 05s</c>, <c>2h 03m 04s</c>.</summary>
    /// <param name="duration">The duration.</param>
    /// <returns>The text.</returns>
    public static string Duration(TimeSpan duration)
    {
        if (duration < TimeSpan.Zero)
        {
            duration = TimeSpan.Zero;
        }

        return duration switch
        {
            { TotalSeconds: < 1 } => $"{(int)duration.TotalMilliseconds}ms",
            { TotalMinutes: < 1 } => duration.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture) + "s",
            { TotalHours: < 1 } => string.Create(CultureInfo.InvariantCulture, $"{duration.Minutes}m {duration.Seconds:00}s"),
            _ => string.Create(CultureInfo.InvariantCulture, $"{(int)duration.TotalHours}h {duration.Minutes:00}m {duration.Seconds:00}s"),
        };
    }

    private static string TaskName(string ns, string task) => "*" + Escape(ns + "/" + task) + "*";

    private static string Slot(DateTimeOffset time, long slot) =>
        Escape(time.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture)) + " (" + slot.ToString(CultureInfo.InvariantCulture) + ")";

    private static string Code(string text) => "`" + Escape(text.Replace('`', '\'')) + "`";

    private static string CodeBlock(string text)
    {
        // Three backticks inside would close the block early: break them up with a zero-width space.
        var body = text.Replace("```", "`\u200B``", StringComparison.Ordinal).TrimEnd('\n');
        return "```\n" + Escape(body) + "\n```";
    }
}
