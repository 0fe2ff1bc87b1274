using System.CommandLine;
using Dtask.Core.Manifests;
using Dtask.Core.Model;
using Dtask.Executor.Ledger;
using Dtask.Operator.Reconciliation;

namespace Dtask.Cli.Commands.Tasks;

/// <summary>
/// <c>dtask suspend|resume NS/NAME [--force]</c>: sets or clears <c>spec.suspend</c> in the stored envelope with a
/// check-and-set, bumping the generation and the spec hash. A task owned by a directory or by Kubernetes is
/// refused without <c>--force</c>: that source's next reconcile would write its own spec back.
/// </summary>
internal static class SuspendCommand
{
    private const int MaxAttempts = 5;

    public static Command Create(bool suspend)
    {
        var name = suspend ? "suspend" : "resume";
        var task = TaskArgument.Create();
        var force = new Option<bool>("--force")
        {
            Description = "Change a task owned by a directory or by Kubernetes anyway (its next reconcile reverts it).",
        };
        var signingKey = SigningKeyOption.Create();
        var consul = new ConsulConnection();
        var command = new Command(name, suspend
            ? "Stop scheduling a task (running runs finish). Exit 1 when not found, or owned by a directory or Kubernetes without --force."
            : "Schedule a suspended task again. Exit 1 when not found, or owned by a directory or Kubernetes without --force.")
        {
            task,
            force,
            signingKey,
        };
        consul.AddTo(command);
        command.SetAction((parseResult, cancellationToken) =>
        {
            var output = parseResult.InvocationConfiguration.Output;
            var error = parseResult.InvocationConfiguration.Error;
            if (!TaskArgument.TryParse(parseResult.GetRequiredValue(task), out var target, out var problem))
            {
                error.WriteLine($"dtask {name}: {problem}");
                return Task.FromResult(Program.UsageError);
            }

            if (!SigningKeyOption.TryRead(name, parseResult, signingKey, error, out var signer))
            {
                return Task.FromResult(Program.UsageError);
            }

            return consul.RunAsync(name, parseResult, async (client, layout) =>
            {
                using var signing = signer;
                await using var ledger = new ConsulTaskLedger(client, layout);
                var outcome = await SetAsync(ledger, target, suspend, parseResult.GetValue(force), signer, cancellationToken).ConfigureAwait(false);
                (outcome.Succeeded ? output : error).WriteLine(outcome.Succeeded ? outcome.Message : $"dtask {name}: {outcome.Message}");
                return outcome.ExitCode;
            });
        });
        return command;
    }

    /// <summary>
    /// Suspends or resumes <paramref name="target"/> with the rules of <c>dtask suspend|resume</c>: exit 1 when not found,
    /// when owned by a directory or Kubernetes without <paramref name="force"/>, or when it kept changing. The message of a
    /// forced change ends with the note line. Consul failures are thrown.
    /// </summary>
    public static async Task<ActionOutcome> SetAsync(IFleetLedger ledger, TaskArgument target, bool suspend, bool force, SpecSigner? signer, CancellationToken cancellationToken)
    {
        var task = new TaskId(target.Namespace, target.Name);
        for (var attempt = 0; attempt < MaxAttempts; attempt++)
        {
            var stored = await ledger.ReadSpecAsync(task, cancellationToken).ConfigureAwait(false);
            if (stored is null || StoredTask.Parse(stored.Json) is not { } envelope)
            {
                return ActionOutcome.Failed($"{target} not found in Consul (under {ledger.Locate(task).TasksFolder})");
            }

            var foreign = envelope.Owner.Kind != TaskOwnerKind.Cli;
            if (foreign && !force)
            {
                return ActionOutcome.Failed($"{target} is owned by {envelope.Owner}; its next reconcile would revert this. Change it there, or use --force");
            }

            if (envelope.Spec.IsSuspended == suspend)
            {
                return ActionOutcome.Done($"{ApplyCommand.Resource}/{target} unchanged (already {(suspend ? "suspended" : "not suspended")})");
            }

            // Resuming clears the field, so the spec hashes like a manifest that never mentioned it.
            var spec = envelope.Spec with { Suspend = suspend ? true : null };
            var updated = (envelope with { Spec = spec, SpecHash = TaskJson.SpecHash(spec), Generation = envelope.Generation + 1 }).Over(envelope, TimeProvider.System.GetUtcNow());

            // The old signature covers the old spec: the new one is signed with --signing-key, or goes unsigned.
            updated = signer?.Sign(updated with { Signature = null }) ?? updated with { Signature = null };
            if (!await ledger.ReplaceSpecAsync(task, updated.ToJson(), stored.ModifyIndex, cancellationToken).ConfigureAwait(false))
            {
                continue;
            }

            var message = $"{ApplyCommand.Resource}/{target} {(suspend ? "suspended" : "resumed")} (generation {updated.Generation})";
            return ActionOutcome.Done(foreign ? message + Environment.NewLine + $"note: {target} is owned by {envelope.Owner}; its next reconcile will write its own spec back" : message);
        }

        return ActionOutcome.Failed($"{target} kept changing in Consul; nothing was written, try again");
    }
}
