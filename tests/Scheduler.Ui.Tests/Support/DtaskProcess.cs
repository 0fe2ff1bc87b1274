using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;

namespace Dtask.Ui.Tests.Support;

/// <summary>A <c>dotnet dtask.dll ...</c> process (an executor, <c>dtask ui</c>) with its output lines kept.</summary>
public sealed class DtaskProcess : IAsyncDisposable
{
    private readonly Process process;
    private readonly ConcurrentQueue<string> lines = new();

    private DtaskProcess(Process process) => this.process = process;

    public string Output => string.Join('\n', lines);

    public bool HasExited => process.HasExited;

    public int ExitCode => process.ExitCode;

    public static DtaskProcess Start(params string[] args)
    {
        var start = new ProcessStartInfo(DtaskBuild.DotnetHost())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add("exec");
        start.ArgumentList.Add(DtaskBuild.Dll());
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["DTASK_LOG_FORMAT"] = "console";
        start.Environment.Remove("CONSUL_HTTP_ADDR");
        start.Environment.Remove("CONSUL_HTTP_TOKEN");
        var process = new Process { StartInfo = start };
        var started = new DtaskProcess(process);
        process.OutputDataReceived += (_, e) => { if (e.Data is { } line) { started.lines.Enqueue(line); } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is { } line) { started.lines.Enqueue(line); } };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return started;
    }

    /// <summary>The first output line that contains <paramref name="text"/>, once it is printed; fails with the output when it is not within the time.</summary>
    public async Task<string> WaitForLineAsync(string text, TimeSpan within)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            if (lines.FirstOrDefault(l => l.Contains(text, StringComparison.Ordinal)) is { } line)
            {
                return line;
            }

            if (process.HasExited)
            {
                Assert.Fail($"the process exited ({process.ExitCode}) before printing '{text}':\n{Output}");
            }

            if (clock.Elapsed > within)
            {
                Assert.Fail($"no '{text}' within {within.TotalSeconds} s:\n{Output}");
            }

            await Task.Delay(25, TestContext.Current.CancellationToken);
        }
    }

    /// <summary>SIGTERM, then waits for the exit.</summary>
    public async Task StopAsync()
    {
        if (!process.HasExited)
        {
            using var kill = Process.Start(new ProcessStartInfo("kill") { ArgumentList = { "-TERM", process.Id.ToString(CultureInfo.InvariantCulture) }, UseShellExecute = false })!;
            await kill.WaitForExitAsync();
        }

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await process.WaitForExitAsync(timeout.Token);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync();
            }
        }
        catch (InvalidOperationException)
        {
            // Gone already.
        }

        process.Dispose();
    }
}
