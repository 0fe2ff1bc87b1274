using System.CommandLine;
using Dtask.Core.Manifests;

namespace Dtask.Cli.Commands;

/// <summary><c>dtask validate -f FILE|DIR</c>: checks manifests with the same validator the operator uses.</summary>
internal static class ValidateCommand
{
    public static Command Create()
    {
        var files = new Option<string[]>("--file", "-f")
        {
            Description = "A manifest file, or a directory read recursively (*.yaml, *.yml). Repeatable.",
            Required = true,
        };
        var command = new Command("validate", "Check ScheduledTask manifests; print each invalid document with its errors. Exit 0 when all are valid, 1 when any is not.")
        {
            files,
        };
        command.SetAction(parseResult =>
        {
            var output = parseResult.InvocationConfiguration.Output;
            var error = parseResult.InvocationConfiguration.Error;
            return Run(parseResult.GetRequiredValue(files), output, error);
        });
        return command;
    }

    private static int Run(IReadOnlyList<string> paths, TextWriter output, TextWriter error)
    {
        var missing = paths.Where(p => !File.Exists(p) && !Directory.Exists(p)).ToList();
        foreach (var path in missing)
        {
            error.WriteLine($"dtask validate: {path}: no such file or directory");
        }

        if (missing.Count > 0)
        {
            return Program.UsageError;
        }

        var documents = ManifestReader.Read(paths);
        var invalid = 0;
        foreach (var document in documents.Where(d => !d.IsValid))
        {
            invalid++;
            foreach (var line in document.ErrorLines())
            {
                output.WriteLine(line);
            }
        }

        if (documents.Count == 0)
        {
            error.WriteLine($"dtask validate: no manifests found in {string.Join(", ", paths)}");
        }

        output.WriteLine($"{documents.Count} document{(documents.Count == 1 ? "" : "s")}, {invalid} invalid");
        return invalid == 0 ? Program.Success : Program.Failure;
    }
}
