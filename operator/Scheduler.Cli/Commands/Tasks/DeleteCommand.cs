using System.CommandLine;
using Dtask.Core.Manifests;
using Dtask.Operator.Reconciliation;

namespace Dtask.Cli.Commands.Tasks;

/// <summary>
/// <c>dtask delete NS/NAME</c> or <c>dtask delete -f FILE|DIR</c>: removes tasks from Consul. Only tasks owned by
/// <c>cli</c> are deleted unless <c>--force</c> (a task owned by a directory or by Kubernetes would come back at
/// that source's next reconcile anyway).
/// </summary>
internal static class DeleteCommand
{
    public static Command Create()
    {
        var task = new Argument<string?>("task")
        {
            Description = "The task as NAMESPACE/NAME (or NAME in namespace default); or use -f.",
            Arity = ArgumentArity.ZeroOrOne,
        };
        var files = new Option<string[]>("--file", "-f")
        {
            Description = "Delete the tasks these manifests declare (a file, or a directory read recursively). Repeatable.",
        };
        var force = new Option<bool>("--force")
        {
            Description = "Delete even when another source (a directory, Kubernetes) owns the task.",
        };
        var consul = new ConsulConnection();
        var command = new Command("delete", "Delete tasks from Consul. Exit 1 when a task is not found or is owned by another source (without --force).")
        {
            task,
            files,
            force,
        };
        consul.AddTo(command);
        command.SetAction((parseResult, cancellationToken) =>
        {
            var output = parseResult.InvocationConfiguration.Output;
            var error = parseResult.InvocationConfiguration.Error;
            var named = parseResult.GetValue(task);
            var paths = parseResult.GetValue(files) ?? [];
            if ((named is null) == (paths.Length == 0))
            {
                error.WriteLine("dtask delete: name one task as NAMESPACE/NAME, or give -f FILE|DIR (not both)");
                return Task.FromResult(Program.UsageError);
            }

            var targets = new List<TaskArgument>();
            if (named is not null)
            {
                if (!TaskArgument.TryParse(named, out var one, out var problem))
                {
                    error.WriteLine($"dtask delete: {problem}");
                    return Task.FromResult(Program.UsageError);
                }

                targets.Add(one);
            }
            else if (ManifestFiles.Read("delete", paths, output, error) is { } documents)
            {
                targets.AddRange(documents.Select(d => new TaskArgument(d.Task!.Metadata.EffectiveNamespace, d.Task.Metadata.Name!)));
            }
            else
            {
                return Task.FromResult(ManifestFiles.LastExitCode(paths));
            }

            return consul.RunAsync("delete", parseResult, async (client, layout) =>
            {
                var reconciler = new TaskReconciler(client, layout);
                var outcomes = new List<TaskOutcome>();
                foreach (var target in targets)
                {
                    outcomes.Add(await reconciler.DeleteOneAsync(TaskOwner.Cli, target.Namespace, target.Name, parseResult.GetValue(force), cancellationToken).ConfigureAwait(false));
                }

                return ApplyCommand.Print(outcomes, output, error, "; use --force to delete it anyway (its source would write it again)");
            });
        });
        return command;
    }
}
