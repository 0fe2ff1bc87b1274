using System.CommandLine;
using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Executor.Ledger;

namespace Dtask.Cli.Commands.Tasks;

/// <summary>
/// <c>dtask trigger NS/NAME</c>: asks the executors to run the task once now, by writing a <see cref="ControlRequest"/>
/// to its own key, <c>control/&lt;ns&gt;/&lt;name&gt;/trigger/&lt;id&gt;</c> (a random id, CAS 0), so no other
/// request is ever overwritten: two triggers are two manual runs, and a pending stop request is left alone. Nothing in the
/// request comes from this machine's clock but the informational <c>requestedAt</c>: the trigger's order is its key's
/// CreateIndex, which Consul assigns.
/// </summary>
internal static class TriggerCommand
{
    public static Command Create()
    {
        var task = TaskArgument.Create();
        var consul = new ConsulConnection();
        var command = new Command("trigger", "Run a task once now, outside its schedule: writes a trigger request the executors pick up (claimed so it runs exactly once; it waits while a run goes on, and never moves or skips a scheduled slot). Prints the request id. Exit 1 when the task is not found.") { task };
        consul.AddTo(command);
        command.SetAction((parseResult, cancellationToken) =>
        {
            var output = parseResult.InvocationConfiguration.Output;
            var error = parseResult.InvocationConfiguration.Error;
            if (!TaskArgument.TryParse(parseResult.GetRequiredValue(task), out var target, out var problem))
            {
                error.WriteLine($"dtask trigger: {problem}");
                return Task.FromResult(Program.UsageError);
            }

            return consul.RunAsync("trigger", parseResult, async (client, layout) =>
            {
                await using var ledger = new ConsulTaskLedger(client, layout);
                var outcome = await TriggerAsync(ledger, target, "cli@" + Environment.MachineName, cancellationToken).ConfigureAwait(false);
                (outcome.Succeeded ? output : error).WriteLine(outcome.Succeeded ? outcome.Message : "dtask trigger: " + outcome.Message);
                return outcome.ExitCode;
            });
        });
        return command;
    }

    /// <summary>
    /// Writes a trigger request for <paramref name="target"/> (the rules of <c>dtask trigger</c>): exit 1 when the task
    /// is not found or the request key exists already. Consul failures are thrown.
    /// </summary>
    public static async Task<ActionOutcome> TriggerAsync(ITaskLedger ledger, TaskArgument target, string requestedBy, CancellationToken cancellationToken)
    {
        var task = new TaskId(target.Namespace, target.Name);
        if (await ledger.ReadSpecAsync(task, cancellationToken).ConfigureAwait(false) is null)
        {
            return ActionOutcome.Failed($"{target} not found in Consul (under {ledger.Locate(task).TasksFolder})");
        }

        var request = new ControlRequest
        {
            Action = ControlAction.Trigger,
            Id = Guid.NewGuid().ToString("N"),
            RequestedAt = TimeProvider.System.GetUtcNow(),
            RequestedBy = requestedBy,
        };
        if (await ledger.RequestTriggerAsync(task, request, cancellationToken).ConfigureAwait(false) is not { } trigger)
        {
            return ActionOutcome.Failed($"{ledger.Locate(task).Trigger(request.Id)} exists already; nothing was written, try again");
        }

        var sequence = trigger.CreateIndex != 0 ? $", #{trigger.CreateIndex}" : ", already picked up";
        return ActionOutcome.Done($"{ApplyCommand.Resource}/{target} triggered (request {request.Id}{sequence}); the executors will pick it up");
    }
}

/// <summary>What an action (trigger, suspend, resume) did: its exit code and the line the CLI prints for it (stdout on success, stderr after the command's name otherwise).</summary>
internal sealed record ActionOutcome(int ExitCode, string Message)
{
    /// <summary>True for exit 0.</summary>
    public bool Succeeded => ExitCode == Program.Success;

    /// <summary>A success with its message.</summary>
    public static ActionOutcome Done(string message) => new(Program.Success, message);

    /// <summary>A refusal (exit 1) with its reason.</summary>
    public static ActionOutcome Failed(string reason) => new(Program.Failure, reason);
}
