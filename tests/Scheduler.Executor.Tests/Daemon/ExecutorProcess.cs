using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Dtask.Executor.Tests.Cli;
using Dtask.Executor.Tests.Support;

namespace Dtask.Executor.Tests.Daemon;

/// <summary>A <c>dotnet dtask.dll executor</c> process with its output lines kept, for tests that need separate executors.</summary>
public sealed class ExecutorProcess : IAsyncDisposable
{
    private readonly Process process;
    private readonly ConcurrentQueue<string> lines = new();

    private ExecutorProcess(Process process, string node)
    {
        this.process = process;
        Node = node;
    }

    public string Node { get; }

    public int Pid => process.Id;

    public bool HasExited => process.HasExited;

    public int ExitCode => process.ExitCode;

    public IReadOnlyList<string> Lines => [.. lines];

    public string Output => string.Join('\n', lines);

    /// <summary>Starts an executor with short test timings (session TTL 10 s, shutdown grace 5 s, termination grace 1 s) unless <paramref name="extra"/> gives them (<c>--flag=value</c>).</summary>
    public static ExecutorProcess Start(Uri consul, string prefix, string node, IReadOnlyDictionary<string, string>? environment = null, params string[] extra)
    {
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        string[] timings = ["--session-ttl", "10s", "--shutdown-grace", "5s", "--termination-grace", "1s"];
        foreach (var argument in (string[])["exec", DtaskProcess.DllPath, "executor", "--node", node, "--prefix", prefix, "--consul", consul.ToString()])
        {
            start.ArgumentList.Add(argument);
        }

        // A timing given in extra (--flag=value) replaces the test default.
        for (var i = 0; i < timings.Length; i += 2)
        {
            if (!extra.Any(e => e.StartsWith(timings[i] + "=", StringComparison.Ordinal)))
            {
                start.ArgumentList.Add(timings[i]);
                start.ArgumentList.Add(timings[i + 1]);
            }
        }

        foreach (var argument in extra)
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["DTASK_LOG_FORMAT"] = "console";
        start.Environment.Remove("CONSUL_HTTP_ADDR");
        start.Environment.Remove("SLACK_WEBHOOK");
        start.Environment.Remove("NOTIFY_SOCKET");
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[name] = value;
        }

        var process = new Process { StartInfo = start };
        var executor = new ExecutorProcess(process, node);
        process.OutputDataReceived += (_, e) => { if (e.Data is { } line) { executor.lines.Enqueue(line); } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is { } line) { executor.lines.Enqueue(line); } };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return executor;
    }

    public Task<bool> WaitForAsync(string text, TimeSpan within) =>
        Eventually.TrueAsync(() => lines.Any(l => l.Contains(text, StringComparison.Ordinal)), within);

    /// <summary>Waits for "watching ..." (registered, tasks loaded).</summary>
    public async Task ReadyAsync()
    {
        Assert.True(await WaitForAsync("watching ", TimeSpan.FromSeconds(30)), $"executor {Node} did not start:\n{Output}");
    }

    public void Signal(string signal) => Kill(signal, Pid);

    public static void Kill(string signal, int pid)
    {
        using var kill = Process.Start(new ProcessStartInfo("kill") { ArgumentList = { "-" + signal, pid.ToString(CultureInfo.InvariantCulture) }, UseShellExecute = false, RedirectStandardError = true })!;
        kill.WaitForExit();
    }

    /// <summary>SIGTERM, then waits for the exit; returns the exit code.</summary>
    public async Task<int> StopAsync(TimeSpan? within = null)
    {
        if (!process.HasExited)
        {
            Signal("TERM");
        }

        using var timeout = new CancellationTokenSource(within ?? TimeSpan.FromSeconds(30));
        await process.WaitForExitAsync(timeout.Token);
        return process.ExitCode;
    }

    public async Task<int> WaitForExitAsync(TimeSpan within)
    {
        using var timeout = new CancellationTokenSource(within);
        await process.WaitForExitAsync(timeout.Token);
        return process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!process.HasExited)
            {
                Signal("CONT");
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync();
            }
        }
        catch (InvalidOperationException)
        {
            // Gone.
        }

        process.Dispose();
    }
}
