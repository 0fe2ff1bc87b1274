using System.CommandLine;
using Dtask.Consul.Http;
using Dtask.Consul.Kv;
using Dtask.Core.State;

namespace Dtask.Cli.Commands.Tasks;

/// <summary>
/// <c>dtask trigger NS/NAME</c>: asks the executors to run the task once now, by writing a
/// <see cref="ControlRequest"/> (<c>trigger</c>, slot = now in Unix seconds) to <c>control/&lt;ns&gt;/&lt;name&gt;</c>
/// with a check-and-set at the index read, so two requests written at once never overwrite each other unseen.
/// </summary>
internal static class TriggerCommand
{
    public static Command Create()
    {
        var task = TaskArgument.Create();
        var consul = new ConsulConnection();
        var command = new Command("trigger", "Run a task once now: writes a trigger request the executors pick up (the run is claimed like a slot, so it runs exactly once). Exit 1 when the task is not found.") { task };
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
                var spec = await client.Kv.GetAsync(layout.TaskKey(target.Namespace, target.Name), cancellationToken: cancellationToken).ConfigureAwait(false);
                if (spec.Value is null)
                {
                    error.WriteLine($"dtask trigger: {target} not found in Consul (under {layout.TasksPrefix})");
                    return Program.Failure;
                }

                var key = layout.ControlKey(target.Namespace, target.Name);
                var existing = await client.Kv.GetAsync(key, QueryOptions.ConsistentRead, cancellationToken).ConfigureAwait(false);
                var now = TimeProvider.System.GetUtcNow();
                var request = new ControlRequest
                {
                    Action = ControlAction.Trigger,
                    Id = Guid.NewGuid().ToString("N"),
                    RequestedAt = now,
                    RequestedBy = "cli@" + Environment.MachineName,
                    Slot = now.ToUnixTimeSeconds(),
                };
                var written = await client.Kv.PutStringAsync(key, StateJson.Serialize(request),
                    new KvPutOptions { Cas = existing.Value?.ModifyIndex ?? 0 }, cancellationToken).ConfigureAwait(false);
                if (!written.Value)
                {
                    var other = await client.Kv.GetAsync(key, QueryOptions.ConsistentRead, cancellationToken).ConfigureAwait(false);
                    var concurrent = StateJson.TryDeserialize<ControlRequest>(other.Value?.ValueAsString());
                    error.WriteLine(concurrent is { Action: ControlAction.Trigger }
                        ? $"dtask trigger: another trigger of {target} (request {concurrent.Id}, slot {concurrent.Slot}) was written at the same moment; it runs the task, this one was not written"
                        : $"dtask trigger: {key} changed while it was being written; nothing was written, try again");
                    return Program.Failure;
                }

                output.WriteLine($"{ApplyCommand.Resource}/{target} triggered (request {request.Id}, slot {request.Slot}); the executors will pick it up");
                return Program.Success;
            });
        });
        return command;
    }
}
