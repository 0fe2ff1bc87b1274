using System.CommandLine;
using Dtask.Core.Manifests;
using Dtask.Operator.Reconciliation;

namespace Dtask.Cli.Commands.Tasks;

/// <summary>
/// <c>dtask apply -f FILE|DIR [--prune]</c>: validates the manifests, then reconciles them into Consul as owner
/// <c>cli</c> and prints one line per task like kubectl (<c>scheduledtask.dtask.dev/ops/backup created</c>).
/// Any invalid document: its errors are printed, nothing is written, exit 1. A task owned by another source is
/// left alone and reported (exit 1). Without <c>--prune</c>, cli tasks missing from the files stay.
/// </summary>
internal static class ApplyCommand
{
    /// <summary>The resource name printed before each task.</summary>
    public const string Resource = "scheduledtask.dtask.dev";

    public static Command Create()
    {
        var files = ManifestFiles.Option();
        var prune = new Option<bool>("--prune")
        {
            Description = "Also delete tasks applied with dtask apply (owner cli) that the files no longer declare.",
        };
        var signingKey = SigningKeyOption.Create();
        var consul = new ConsulConnection();
        var command = new Command("apply", "Write ScheduledTask manifests into Consul (owner cli). Prints created, configured or unchanged per task. Exit 1 when a manifest is invalid (nothing is written) or a task is owned by another source; 69 when Consul is unreachable; 77 when permission is denied.")
        {
            files,
            prune,
            signingKey,
        };
        consul.AddTo(command);
        command.SetAction((parseResult, cancellationToken) =>
        {
            var output = parseResult.InvocationConfiguration.Output;
            var error = parseResult.InvocationConfiguration.Error;
            if (ManifestFiles.Read("apply", parseResult.GetRequiredValue(files), output, error) is not { } documents)
            {
                return Task.FromResult(ManifestFiles.LastExitCode(parseResult.GetRequiredValue(files)));
            }

            if (!SigningKeyOption.TryRead("apply", parseResult, signingKey, error, out var signer))
            {
                return Task.FromResult(Program.UsageError);
            }

            return consul.RunAsync("apply", parseResult, async (client, layout) =>
            {
                using var signing = signer;
                var reconciler = new TaskReconciler(client, layout) { Signer = signer };
                var result = await reconciler.ReconcileAsync(TaskOwner.Cli, documents, parseResult.GetValue(prune), cancellationToken).ConfigureAwait(false);
                return Print(result.Outcomes, output, error);
            });
        });
        return command;
    }

    /// <summary>Prints outcomes the kubectl way; conflicts go to stderr. Returns 1 when any was a conflict or invalid.</summary>
    public static int Print(IEnumerable<TaskOutcome> outcomes, TextWriter output, TextWriter error, string? conflictHint = null)
    {
        var failed = false;
        foreach (var outcome in outcomes)
        {
            switch (outcome.Action)
            {
                case TaskAction.Conflict:
                    error.WriteLine($"{Resource}/{outcome}{conflictHint}");
                    failed = true;
                    break;
                case TaskAction.Invalid:
                    error.WriteLine($"{Resource}/{outcome}");
                    failed = true;
                    break;
                case TaskAction.NotFound:
                    error.WriteLine($"{Resource}/{outcome.Key} not found");
                    failed = true;
                    break;
                default:
                    output.WriteLine($"{Resource}/{outcome}");
                    break;
            }
        }

        return failed ? Program.Failure : Program.Success;
    }
}

/// <summary>The <c>-f FILE|DIR</c> option of apply and delete, and reading it all-or-nothing.</summary>
internal static class ManifestFiles
{
    public static Option<string[]> Option() => new("--file", "-f")
    {
        Description = "A manifest file, or a directory read recursively (*.yaml, *.yml). Repeatable.",
        Required = true,
    };

    /// <summary>
    /// Reads and validates every document; null (after printing why) when a path is missing, a document is
    /// invalid, or there is none.
    /// </summary>
    public static IReadOnlyList<ManifestDocument>? Read(string command, IReadOnlyList<string> paths, TextWriter output, TextWriter error)
    {
        var missing = paths.Where(p => !File.Exists(p) && !Directory.Exists(p)).ToList();
        foreach (var path in missing)
        {
            error.WriteLine($"dtask {command}: {path}: no such file or directory");
        }

        if (missing.Count > 0)
        {
            return null;
        }

        var documents = ManifestReader.Read(paths);
        var invalid = documents.Where(d => !d.IsValid).ToList();
        foreach (var line in invalid.SelectMany(d => d.ErrorLines()))
        {
            error.WriteLine(line);
        }

        if (invalid.Count > 0)
        {
            error.WriteLine($"dtask {command}: {invalid.Count} invalid document{(invalid.Count == 1 ? "" : "s")}; nothing was written");
            return null;
        }

        if (documents.Count == 0)
        {
            error.WriteLine($"dtask {command}: no manifests found in {string.Join(", ", paths)}");
            return null;
        }

        _ = output;
        return documents;
    }

    /// <summary>The exit code after <see cref="Read"/> returned null: 2 for a missing path, 1 otherwise.</summary>
    public static int LastExitCode(IReadOnlyList<string> paths) =>
        paths.Any(p => !File.Exists(p) && !Directory.Exists(p)) ? Program.UsageError : Program.Failure;
}

/// <summary>The <c>--signing-key FILE</c> option (default <c>DTASK_SIGNING_KEY_FILE</c>) of the commands that write task specs.</summary>
internal static class SigningKeyOption
{
    /// <summary>The variable naming the signing key file when the option is absent.</summary>
    public const string Variable = "DTASK_SIGNING_KEY_FILE";

    public static Option<string?> Create() => new("--signing-key")
    {
        Description = $"Sign every task spec written with this ECDSA P-256 private key (PEM); executors started with --trusted-keys run only verified specs. Default: {Variable}.",
    };

    /// <summary>Reads the key named by the option or the variable; false (after printing why, never the key) when it cannot be used.</summary>
    public static bool TryRead(string command, ParseResult parseResult, Option<string?> option, TextWriter error, out Core.Manifests.SpecSigner? signer)
    {
        signer = null;
        var path = parseResult.GetValue(option) is { Length: > 0 } given ? given : Environment.GetEnvironmentVariable(Variable);
        if (string.IsNullOrEmpty(path))
        {
            return true;
        }

        try
        {
            signer = Core.Manifests.SpecSigner.FromPemFile(path);
            return true;
        }
        catch (Core.Manifests.SpecKeyException e)
        {
            error.WriteLine($"dtask {command}: --signing-key: {e.Message}");
            return false;
        }
    }
}
