using System.CommandLine;
using Dtask.Core.State;
using Dtask.Operator.Status;

namespace Dtask.Cli.Commands.Tasks;

/// <summary>
/// <c>dtask logs NS/NAME [--slot S]</c>: prints the output tail Consul keeps of the current or last run (or of the
/// run of slot S: its Unix time). Exit 1 when there is no such run.
/// </summary>
internal static class LogsCommand
{
    public static Command Create()
    {
        var task = TaskArgument.Create();
        var slot = new Option<long?>("--slot") { Description = "The run of this slot (its Unix time in seconds), as dtask describe and dtask history show it." };
        var consul = new ConsulConnection();
        var command = new Command("logs", "Print the kept output tail (the last 4 KiB of stdout and stderr) of the current or last run, or of one slot's run.") { task, slot };
        consul.AddTo(command);
        command.SetAction((parseResult, cancellationToken) =>
        {
            var output = parseResult.InvocationConfiguration.Output;
            var error = parseResult.InvocationConfiguration.Error;
            if (!TaskArgument.TryParse(parseResult.GetRequiredValue(task), out var target, out var problem))
            {
                error.WriteLine($"dtask logs: {problem}");
                return Task.FromResult(Program.UsageError);
            }

            return consul.RunAsync("logs", parseResult, async (client, layout) =>
            {
                var observation = await new TaskObservationReader(client, layout).ReadAsync(target.Namespace, target.Name, cancellationToken).ConfigureAwait(false);
                var wanted = parseResult.GetValue(slot);
                var history = observation.History;
                RunRecord? run = wanted is { } s
                    ? (observation.Current is { IsManual: false } current && current.Slot == s ? current : history.FirstOrDefault(h => !h.IsManual && h.Slot == s))
                    : observation.Current ?? (history.Count > 0 ? history[^1] : null);
                if (run is null)
                {
                    error.WriteLine(wanted is { } missing
                        ? $"dtask logs: {target} has no run of slot {missing} in Consul"
                        : $"dtask logs: {target} has no runs in Consul");
                    return Program.Failure;
                }

                if (string.IsNullOrEmpty(run.OutputTail))
                {
                    error.WriteLine($"dtask logs: the run of slot {run.Slot} ({TaskStatusBuilder.ResultWord(run.State)} on {run.Node}) kept no output");
                    return Program.Success;
                }

                output.Write(run.OutputTail);
                if (!run.OutputTail.EndsWith('\n'))
                {
                    output.WriteLine();
                }

                return Program.Success;
            });
        });
        return command;
    }
}
