using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Dtask.Demo;

/// <summary>
/// One <c>dtask</c> process of the demo (the operator or an executor): started with its output captured line by
/// line, stopped with SIGTERM so it shuts down cleanly (releases its locks, destroys its session), killed only if it
/// does not stop in time.
/// </summary>
internal sealed partial class ServiceProcess : IAsyncDisposable
{
    private const int SigTerm = 15;
    private readonly Process process;
    private readonly StreamWriter log;

    private ServiceProcess(string name, Process process, StreamWriter log)
    {
        Name = name;
        this.process = process;
        this.log = log;
    }

    /// <summary>The name shown to the user (<c>operator</c>, <c>node-a</c>).</summary>
    public string Name { get; }

    /// <summary>True once the process has exited.</summary>
    public bool HasExited => process.HasExited;

    /// <summary>Starts <c>dotnet DTASK ARGS</c>; every output line goes to <paramref name="logFile"/> and to <paramref name="onLine"/>.</summary>
    public static ServiceProcess Start(
        string name,
        string dtaskDll,
        IEnumerable<string> args,
        IReadOnlyDictionary<string, string> environment,
        string logFile,
        Action<string>? onLine = null)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(dtaskDll);
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        foreach (var (key, value) in environment)
        {
            info.Environment[key] = value;
        }

        var log = new StreamWriter(logFile) { AutoFlush = true };
        var process = new Process { StartInfo = info };
        var lockObject = new object();
        void Line(string? line)
        {
            if (line is null)
            {
                return;
            }

            lock (lockObject)
            {
                log.WriteLine(line);
            }

            onLine?.Invoke(line);
        }

        process.OutputDataReceived += (_, e) => Line(e.Data);
        process.ErrorDataReceived += (_, e) => Line(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return new ServiceProcess(name, process, log);
    }

    /// <summary>Asks the process to stop (SIGTERM) and waits up to <paramref name="grace"/>, then kills it.</summary>
    public async Task StopAsync(TimeSpan grace)
    {
        if (process.HasExited)
        {
            return;
        }

        _ = Kill(process.Id, SigTerm);
        using var timeout = new CancellationTokenSource(grace);
        try
        {
            await process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync().ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        process.Dispose();
        await log.DisposeAsync().ConfigureAwait(false);
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
