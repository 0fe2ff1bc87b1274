using System.CommandLine;
using Dtask.Consul;
using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Executor.Ledger;
using Dtask.Operator.Status;

namespace Dtask.Cli.Commands.Tasks;

/// <summary>
/// <c>dtask describe NS/NAME</c>: the spec in short, owner and generation, the status conditions rebuilt from
/// Consul, the last runs (manual runs among them), who holds the task's lock right now (session and executor node),
/// and the pending control requests (triggers not yet run, stop requests).
/// </summary>
internal static class DescribeCommand
{
    private const int RunsShown = 10;

    public static Command Create()
    {
        var task = TaskArgument.Create();
        var consul = new ConsulConnection();
        var command = new Command("describe", "Show one task: spec summary, owner, generation, conditions, the last runs and the live lock holder. Exit 1 when not found.") { task };
        consul.AddTo(command);
        command.SetAction((parseResult, cancellationToken) =>
        {
            var error = parseResult.InvocationConfiguration.Error;
            if (!TaskArgument.TryParse(parseResult.GetRequiredValue(task), out var target, out var problem))
            {
                error.WriteLine($"dtask describe: {problem}");
                return Task.FromResult(Program.UsageError);
            }

            return consul.RunAsync("describe", parseResult, async (client, layout) =>
            {
                var observation = await new TaskObservationReader(client, layout).ReadAsync(target.Namespace, target.Name, cancellationToken).ConfigureAwait(false);
                if (observation.Stored is { Envelope: null })
                {
                    error.WriteLine($"dtask describe: {target}: '{layout.TaskKey(target.Namespace, target.Name)}' holds no readable task spec (garbage, or not written by dtask)");
                    return Program.Failure;
                }

                if (observation.Envelope is null)
                {
                    error.WriteLine($"dtask describe: {target} not found in Consul (under {layout.TasksPrefix})");
                    return Program.Failure;
                }

                await using var ledger = new ConsulTaskLedger(client, layout);
                var holder = await LockHolderAsync(client, ledger, observation.LockSession, cancellationToken).ConfigureAwait(false);
                var pending = await ledger.ListControlRequestsAsync(new TaskId(target.Namespace, target.Name), cancellationToken).ConfigureAwait(false);
                Write(parseResult.InvocationConfiguration.Output, observation, holder, TimeProvider.System.GetUtcNow());
                WritePending(parseResult.InvocationConfiguration.Output, pending);
                return Program.Success;
            });
        });
        return command;
    }

    private static async Task<string> LockHolderAsync(ConsulClient client, IFleetLedger ledger, string? session, CancellationToken cancellationToken)
    {
        if (session is null)
        {
            return "free";
        }

        var nodes = await GetCommand.ReadNodesAsync(ledger, cancellationToken).ConfigureAwait(false);
        if (nodes.FirstOrDefault(n => n.Session == session) is { } node)
        {
            return $"held by session {session} (executor {node.Node})";
        }

        var info = await client.Sessions.InfoAsync(session, cancellationToken: cancellationToken).ConfigureAwait(false);
        return info.Value is { } live
            ? $"held by session {session} (Consul node {live.Node}, no executor registered)"
            : $"held by session {session} (the session is gone)";
    }

    private static void Write(TextWriter output, TaskObservation observation, string holder, DateTimeOffset now)
    {
        var envelope = observation.Envelope!;
        var spec = envelope.Spec;
        var status = observation.StatusAt(now);
        void Line(string label, string? value) => output.WriteLine($"{label + ":",-20}{value}");

        Line("Name", observation.Name);
        Line("Namespace", observation.Namespace);
        Line("Owner", envelope.Owner.ToString());
        Line("Generation", envelope.Generation.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Line("Spec hash", envelope.SpecHash);
        Line("Signature", envelope.Signature is { } signature ? $"key {signature.KeyId}" : "<none>");
        if (observation.CurrentRefusal is { } refusal)
        {
            Line("Refused", $"by executor {refusal.Node}: {refusal.Reason}; " +
                (refusal.KeptIndex is { } kept ? $"executors keep running the verified spec of index {kept}" : "the task does not run"));
        }

        Line("Schedule", GetCommand.ScheduleText(spec) + (spec.TimeZone is { } zone ? $" ({zone})" : " (UTC)"));
        if (spec.Jitter is { } jitter)
        {
            Line("Jitter", jitter);
        }

        Line(spec.Shell is null ? "Command" : "Shell", spec.Shell ?? string.Join(' ', (spec.Command ?? []).Select(Quote)));
        if (spec.Timeout is { } timeout)
        {
            Line("Timeout", timeout);
        }

        Line("Suspend", spec.IsSuspended ? "True" : "False");
        if (envelope.ResumedAt is { } resumed)
        {
            Line("Resumed", TableOutput.Instant(resumed) + " (slots of the suspension are not due)");
        }

        Line("Concurrency policy", spec.EffectiveConcurrencyPolicy.ToString());
        Line("Missed run policy", spec.EffectiveMissedRunPolicy.ToString() + (spec.StartingDeadline is { } deadline ? $" (starting deadline {deadline})" : ""));
        Line("Placement", spec.EffectivePlacement.ToString());
        Line("Node selector", spec.NodeSelector is { Count: > 0 } selector
            ? string.Join(",", selector.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key}={p.Value}"))
            : "<none>");
        Line("Lock", holder);
        Line("Last schedule", TableOutput.Instant(status.LastScheduleTime));
        Line("Last successful", TableOutput.Instant(status.LastSuccessfulTime));
        Line("Next schedule", status.NextScheduleTime is { } next ? $"{TableOutput.Instant(next)} (in {TableOutput.Age(next - now)})" : "<none>");
        output.WriteLine("Conditions:");
        TableOutput.WriteTable(output, ["  TYPE", "STATUS", "REASON", "MESSAGE"],
            (status.Conditions ?? []).Select(c => (IReadOnlyList<string>)["  " + c.Type, c.Status ?? "", c.Reason ?? "", c.Message ?? ""]));
        output.WriteLine("Runs:");
        var runs = observation.History.AsEnumerable();
        if (observation.Current is { } current && !observation.History.Any(h => h.IsManual || current.IsManual ? h.RunId == current.RunId : h.Slot == current.Slot))
        {
            runs = runs.Append(current);
        }

        var shown = runs.OrderByDescending(r => r.OrderKey).Take(RunsShown).ToList();
        if (shown.Count == 0)
        {
            output.WriteLine("  <none>");
            return;
        }

        TableOutput.WriteTable(output, ["  SLOT", "NODE", "RESULT", "STARTED", "FINISHED", "EXIT", "REASON"], shown.Select(r => (IReadOnlyList<string>)
        [
            "  " + (r.IsManual ? $"manual #{r.TriggerIndex}" : TableOutput.Instant(DateTimeOffset.FromUnixTimeSeconds(r.Slot))),
            r.Node,
            TaskStatusBuilder.ResultWord(r.State),
            TableOutput.Instant(r.StartedAt),
            TableOutput.Instant(r.FinishedAt),
            r.ExitCode?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "",
            r.Reason ?? "",
        ]));
    }

    /// <summary>The pending control requests of the task: triggers not yet run (oldest first, by CreateIndex) and stop requests.</summary>
    private static void WritePending(TextWriter output, IReadOnlyList<PendingRequest> pending)
    {
        output.WriteLine("Pending requests:");
        var rows = new List<IReadOnlyList<string>>();
        foreach (var pair in pending.OrderBy(p => p.CreateIndex))
        {
            var request = pair.Request;
            rows.Add([
                "  " + (pair.Action == ControlAction.Trigger ? "trigger" : "stop"),
                pair.Action == ControlAction.Trigger ? $"{pair.Id} (#{pair.CreateIndex})" : "run " + pair.Id,
                request?.RequestedBy ?? "",
                request is null ? "" : TableOutput.Instant(request.RequestedAt),
            ]);
        }

        if (rows.Count == 0)
        {
            output.WriteLine("  <none>");
            return;
        }

        TableOutput.WriteTable(output, ["  KIND", "REQUEST", "BY", "REQUESTED AT"], rows);
    }

    private static string Quote(string arg) => arg.Length > 0 && arg.All(c => char.IsAsciiLetterOrDigit(c) || "-_./=:,@%+".Contains(c, StringComparison.Ordinal))
        ? arg
        : "'" + arg.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
}
