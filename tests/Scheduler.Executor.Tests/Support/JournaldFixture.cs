using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Dtask.Executor.Logging;

namespace Dtask.Executor.Tests.Support;

/// <summary>
/// A real systemd-journald: the one listening on the native socket if there is one, else
/// <c>/lib/systemd/systemd-journald</c> started here as a standalone process (it creates the socket; works as root
/// without systemd as PID 1) and stopped at the end. Entries are read back with journalctl.
/// </summary>
public sealed class JournaldFixture : IAsyncLifetime
{
    public const string JournaldBinary = "/lib/systemd/systemd-journald";

    private Process? started;

    public string SocketPath { get; } = JournalSink.DefaultSocketPath;

    /// <summary>Why journal tests cannot run here, or null.</summary>
    public string? SkipReason { get; private set; }

    public async ValueTask InitializeAsync()
    {
        if (JournalSocket.Accepts(SocketPath))
        {
            return;
        }

        if (!File.Exists(JournaldBinary))
        {
            SkipReason = $"no journald listens on {SocketPath} and {JournaldBinary} does not exist";
            return;
        }

        var info = new ProcessStartInfo(JournaldBinary)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        started = Process.Start(info) ?? throw new InvalidOperationException("cannot start journald");
        started.OutputDataReceived += (_, _) => { };
        started.ErrorDataReceived += (_, _) => { };
        started.BeginOutputReadLine();
        started.BeginErrorReadLine();

        var deadline = Stopwatch.StartNew();
        while (!JournalSocket.Accepts(SocketPath))
        {
            if (started.HasExited || deadline.Elapsed > TimeSpan.FromSeconds(10))
            {
                throw new InvalidOperationException($"journald did not open {SocketPath} (exited: {started.HasExited})");
            }

            await Task.Delay(50);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (started is null)
        {
            return;
        }

        if (!started.HasExited)
        {
            using (var kill = Process.Start("kill", ["-TERM", started.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            {
                await kill.WaitForExitAsync();
            }

            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            try
            {
                await started.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                started.Kill();
                await started.WaitForExitAsync();
            }
        }

        started.Dispose();
    }

    /// <summary>
    /// The entries whose <c>DTASK_TASK</c> is <paramref name="task"/>, polling journalctl until at least
    /// <paramref name="expected"/> arrived (journald writes asynchronously) or 10 s passed.
    /// </summary>
    public async Task<IReadOnlyList<IReadOnlyDictionary<string, string>>> ReadAsync(string task, int expected)
    {
        Assert.Null(SkipReason);
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            var entries = await QueryAsync(task);
            if (entries.Count >= expected || deadline.Elapsed > TimeSpan.FromSeconds(10))
            {
                return entries;
            }

            await Task.Delay(100);
        }
    }

    private static async Task<IReadOnlyList<IReadOnlyDictionary<string, string>>> QueryAsync(string task)
    {
        var info = new ProcessStartInfo("journalctl", ["-o", "json", "--all", "--no-pager", "DTASK_TASK=" + task])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        _ = await stderr;
        var entries = new List<IReadOnlyDictionary<string, string>>();
        foreach (var line in (await stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            using var document = JsonDocument.Parse(line);
            var entry = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var field in document.RootElement.EnumerateObject())
            {
                entry[field.Name] = field.Value.ValueKind switch
                {
                    JsonValueKind.String => field.Value.GetString()!,
                    // journalctl prints non-printable values as arrays of bytes.
                    JsonValueKind.Array when field.Value.EnumerateArray().All(v => v.ValueKind == JsonValueKind.Number) =>
                        Encoding.UTF8.GetString(field.Value.EnumerateArray().Select(v => v.GetByte()).ToArray()),
                    _ => field.Value.GetRawText(),
                };
            }

            entries.Add(entry);
        }

        return entries;
    }
}
