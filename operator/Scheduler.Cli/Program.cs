using System.CommandLine;
using Dtask.Cli.Commands;

namespace Dtask.Cli;

/// <summary>The <c>dtask</c> executable: one binary, one subcommand per job.</summary>
internal static class Program
{
    /// <summary>Exit code of a command that ran and found nothing wrong.</summary>
    public const int Success = 0;

    /// <summary>Exit code of a command that ran and found a problem (an invalid manifest, a failed run).</summary>
    public const int Failure = 1;

    /// <summary>Exit code of a command line that could not be used: unknown command or option, missing or nonexistent path.</summary>
    public const int UsageError = 2;

    public static int Main(string[] args) =>
        args.Length > 0 && args[0] == Executor.Processes.WatchdogProgram.CommandName
            ? Executor.Processes.WatchdogProgram.Run(args[1..], Console.In, Console.Error)
            : Run(args, Console.Out, Console.Error);

    /// <summary>The root command with every subcommand registered.</summary>
    public static RootCommand BuildRoot() => new("dtask: a distributed cron whose source of truth is Consul.")
    {
        ValidateCommand.Create(),
        CrdCommand.Create(),
        ScheduleCommand.Create(),
        RunCommand.Create(),
        ExecutorCommand.Create(),
        HistoryCommand.Create(),
        Commands.Tasks.ApplyCommand.Create(),
        Commands.Tasks.DeleteCommand.Create(),
        Commands.Tasks.GetCommand.Create(),
        Commands.Tasks.DescribeCommand.Create(),
        Commands.Tasks.LogsCommand.Create(),
        Commands.Tasks.TriggerCommand.Create(),
        Commands.Tasks.SuspendCommand.Create(suspend: true),
        Commands.Tasks.SuspendCommand.Create(suspend: false),
        Commands.Tasks.OperatorCommand.Create(),
        Ui.UiCommand.Create(),
    };

    /// <summary>Parses <paramref name="args"/> and runs the command, writing results to <paramref name="output"/> and problems to <paramref name="error"/>.</summary>
    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        var parseResult = BuildRoot().Parse(args);
        if (parseResult.Errors.Count > 0 && parseResult.Action is not System.CommandLine.Help.HelpAction)
        {
            foreach (var parseError in parseResult.Errors)
            {
                error.WriteLine($"dtask: {parseError.Message}");
            }

            error.WriteLine("Run 'dtask --help' for usage.");
            return RunCommand.Owns(parseResult) ? RunCommand.UsageExitCode : UsageError;
        }

        try
        {
            var invocation = new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false };
            if (ExecutorCommand.Owns(parseResult))
            {
                // The executor's host handles SIGTERM itself and drains for --shutdown-grace, longer than the default 2 s.
                invocation.ProcessTerminationTimeout = null;
            }

            return parseResult.Invoke(invocation);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            error.WriteLine($"dtask: {e.Message}");
            return Failure;
        }
    }
}
