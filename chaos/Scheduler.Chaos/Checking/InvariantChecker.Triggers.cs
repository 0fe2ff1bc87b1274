using System.Globalization;
using Dtask.Chaos.Evidence;
using Dtask.Core.State;

namespace Dtask.Chaos.Checking;

public static partial class InvariantChecker
{
    /// <summary>
    /// The manual runs against the trigger requests the run sent (<see cref="CheckInput.Triggers"/>), each judged by the
    /// request id the child was handed (<c>DTASK_TRIGGER</c>), never by a run id:
    /// <list type="bullet">
    /// <item><b>duplicate</b>: one request started twice, or a manual child for a request nobody sent.</item>
    /// <item><b>unexplained-trigger</b>: a request Consul confirmed that neither ran, nor was recorded dropped, nor is still
    /// pending in <c>control/</c>.</item>
    /// <item><b>record-contradicts-witness</b>: a request that ran but is recorded dropped, or whose record names another
    /// run, or whose outcome is not the child's; or that ran and is still pending (it could run again).</item>
    /// <item><b>record-without-witness</b>: a request recorded run to completion that no child witnessed.</item>
    /// <item><b>run-without-record</b>: a manual child, ended before the executors stopped, whose request has no record.</item>
    /// </list>
    /// </summary>
    private static TriggerFigures? CheckTriggers(CheckInput input, List<Violation> violations)
    {
        if (input.Triggers is not { } sent)
        {
            return null;
        }

        var manual = input.Runs.Where(r => r.IsManual).GroupBy(r => r.Trigger!, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.OrderBy(r => r.Start).ToList(), StringComparer.Ordinal);
        var known = sent.Select(t => t.Id).ToHashSet(StringComparer.Ordinal);
        foreach (var (id, children) in manual)
        {
            if (!known.Contains(id))
            {
                violations.Add(new Violation("duplicate", children[0].Task, null, $"{Describe(children[0])} ran for trigger {id}, which the run never sent"));
            }
            else if (children.Count > 1)
            {
                violations.Add(new Violation("duplicate", children[0].Task, null,
                    $"trigger {id} started {children.Count} children: {string.Join(" and ", children.Select(r => $"{Describe(r)} (run {r.RunId}, pid {r.Pid})"))}"));
            }
        }

        int ran = 0, dropped = 0, pending = 0, unanswered = 0, unstarted = 0;
        foreach (var trigger in sent)
        {
            var children = manual.GetValueOrDefault(trigger.Id) ?? [];
            var records = input.Kv.ManualOf(trigger.Task).Where(r => r.Trigger == trigger.Id).ToList();
            if (input.Kv.Current.GetValueOrDefault(trigger.Task) is { } current && current.Trigger == trigger.Id)
            {
                records.Add(current);
            }

            var record = records.Count == 0 ? null : records.MaxBy(r => r.IsFinal ? 1 : 0);
            var isPending = input.Kv.PendingOf(trigger.Task).Contains(trigger.Id, StringComparer.Ordinal);
            var what = $"trigger {trigger.Id} (sent {trigger.At:HH:mm:ss.fff}Z)";
            if (children.Count > 0)
            {
                ran++;
                var child = children[0];
                if (isPending)
                {
                    violations.Add(new Violation("record-contradicts-witness", trigger.Task, null, $"{what} ran ({Describe(child)}) but its request is still pending: it could run again"));
                }

                if (record is null)
                {
                    if (child.End is { } end && end < input.Window.End)
                    {
                        violations.Add(new Violation("run-without-record", trigger.Task, null, $"{what} ran ({Describe(child)}) but has no record in KV"));
                    }
                }
                else if (record.State is RunState.Skipped or RunState.Missed)
                {
                    violations.Add(new Violation("record-contradicts-witness", trigger.Task, null, $"{what} ran ({Describe(child)}) but is recorded {record.State} ({record.Reason}) by {record.Node}"));
                }
                else if (children.All(r => r.RunId != record.RunId))
                {
                    violations.Add(new Violation("record-contradicts-witness", trigger.Task, null, $"{what} ran ({Describe(child)}) but its record names run {record.RunId} on {record.Node}"));
                }
                else
                {
                    CheckOutcome(trigger.Task, null, [.. children.Where(r => r.RunId == record.RunId)], record, violations);
                }

                continue;
            }

            switch (record?.State)
            {
                case RunState.Skipped or RunState.Missed:
                    dropped++;
                    break;
                case RunState.Succeeded or RunState.TimedOut:
                case RunState.Failed when record.Reason?.StartsWith("stopped: ", StringComparison.Ordinal) != true:
                    violations.Add(new Violation("record-without-witness", trigger.Task, null,
                        $"{what} recorded {record.State} by {record.Node} (run {record.RunId}) but no child of it wrote a start line"));
                    break;
                case RunState.Lost or RunState.Abandoned or RunState.Running:
                case RunState.Failed:
                    unstarted++; // Claimed, then lost, abandoned or stopped before its child wrote a line: the record says so.
                    break;
                case null when isPending:
                    pending++;
                    break;
                case null when !trigger.Confirmed:
                    unanswered++; // The write's answer never came: it may not have committed.
                    break;
                case null:
                    violations.Add(new Violation("unexplained-trigger", trigger.Task, null,
                        $"{what} was written (Consul confirmed) but neither ran, nor was recorded dropped, nor is pending"));
                    break;
            }
        }

        return new TriggerFigures(sent.Count, sent.Count(t => t.Confirmed), ran, dropped, pending, unanswered, unstarted);
    }
}

/// <summary>The manual trigger stream's figures.</summary>
/// <param name="Sent">Requests sent.</param>
/// <param name="Confirmed">Of those, written with Consul's answer.</param>
/// <param name="Ran">Requests with a witnessed child.</param>
/// <param name="Dropped">Requests recorded dropped (the task stayed busy).</param>
/// <param name="Pending">Requests still waiting in <c>control/</c> when the evidence was taken.</param>
/// <param name="Unanswered">Requests whose write was not answered and of which nothing is seen (not committed).</param>
/// <param name="ClaimedNotStarted">Requests claimed and recorded lost, abandoned or stopped before their child wrote a line.</param>
public sealed record TriggerFigures(int Sent, int Confirmed, int Ran, int Dropped, int Pending, int Unanswered, int ClaimedNotStarted = 0)
{
    /// <summary>One line for the report.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{Sent} sent ({Confirmed} confirmed): {Ran} ran, {Dropped} dropped, {ClaimedNotStarted} claimed but recorded lost, abandoned or stopped before a child started, {Pending} still pending, {Unanswered} unanswered and never seen");
}
