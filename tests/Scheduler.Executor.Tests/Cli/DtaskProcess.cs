using System.Diagnostics;
using Dtask.Testing;

namespace Dtask.Executor.Tests.Cli;

/// <summary>What one run of the built <c>dtask</c> executable printed and returned.</summary>
public sealed record DtaskExit(int ExitCode, string Output, string Error);

/// <summary>Runs the built <c>dtask</c> (the Cli project's output, built as a project reference) as a separate process.</summary>
public static class DtaskProcess
{
    public static string DllPath { get; } = DtaskBuild.Dll();

    public static Task<DtaskExit> RunAsync(params string[] arguments) => RunWithAsync(null, arguments);

    /// <summary>Runs <c>dtask</c> with <paramref name="environment"/> added to its environment (e.g. <c>CONSUL_HTTP_TOKEN</c>).</summary>
    public static async Task<DtaskExit> RunWithAsync(IReadOnlyDictionary<string, string>? environment, params string[] arguments)
    {
        using var process = Start(environment, arguments);
        var output = process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        var error = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        return new DtaskExit(process.ExitCode, await output, await error);
    }

    /// <summary>Starts <c>dtask</c> with its stdout and stderr redirected (the caller reads them) and returns at once.</summary>
    public static Process Start(params string[] arguments) => Start(null, arguments);

    /// <summary>Starts <c>dtask</c> with <paramref name="environment"/> added to its environment, stdout and stderr redirected.</summary>
    public static Process Start(IReadOnlyDictionary<string, string>? environment, params string[] arguments)
    {
        var start = new ProcessStartInfo(DtaskBuild.DotnetHost())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add("exec");
        start.ArgumentList.Add(DllPath);
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["DTASK_LOG_FORMAT"] = "console";
        start.Environment.Remove("CONSUL_HTTP_ADDR");
        start.Environment.Remove("SLACK_WEBHOOK");
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[name] = value;
        }

        return Process.Start(start) ?? throw new InvalidOperationException("cannot start dotnet");
    }
}
