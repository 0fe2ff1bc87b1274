using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Dtask.Bench.Consul;

namespace Dtask.Bench.Report;

/// <summary>Reads <see cref="MachineInfo"/> from <c>/proc</c>, <c>/etc/os-release</c>, the runtime and the tools.</summary>
internal static class MachineProbe
{
    /// <summary>The machine now.</summary>
    public static async Task<MachineInfo> ReadAsync(string repository, CancellationToken cancellationToken)
    {
        var cpu = Lines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown";
        var memKb = Lines("/proc/meminfo").FirstOrDefault(l => l.StartsWith("MemTotal:", StringComparison.Ordinal))?.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1];
        var os = Lines("/etc/os-release").FirstOrDefault(l => l.StartsWith("PRETTY_NAME=", StringComparison.Ordinal))?["PRETTY_NAME=".Length..].Trim('"') ?? RuntimeInformation.OSDescription;
        var kernel = Lines("/proc/sys/kernel/osrelease").FirstOrDefault() ?? "";
        var load = Lines("/proc/loadavg").FirstOrDefault() is { } l ? string.Join(' ', l.Split(' ').Take(3)) : "";
        return new MachineInfo(cpu, Environment.ProcessorCount,
            Math.Round(double.Parse(memKb ?? "0", CultureInfo.InvariantCulture) / 1024 / 1024, 1), os, kernel,
            RuntimeInformation.FrameworkDescription, await MeasuredAgent.VersionAsync(cancellationToken), load,
            await CommitAsync(repository, cancellationToken));
    }

    /// <summary>The 1, 5 and 15 minute load averages now.</summary>
    public static string LoadAverage() => Lines("/proc/loadavg").FirstOrDefault() is { } l ? string.Join(' ', l.Split(' ').Take(3)) : "";

    private static string[] Lines(string path)
    {
        try
        {
            return File.ReadAllLines(path);
        }
        catch (IOException)
        {
            return [];
        }
        catch (UnauthorizedAccessException)
        {
            return [];
        }
    }

    private static async Task<string> CommitAsync(string repository, CancellationToken cancellationToken)
    {
        try
        {
            var start = new ProcessStartInfo("git") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = repository };
            foreach (var argument in new[] { "rev-parse", "--short", "HEAD" })
            {
                start.ArgumentList.Add(argument);
            }

            using var git = Process.Start(start);
            if (git is null)
            {
                return "";
            }

            var text = await git.StandardOutput.ReadToEndAsync(cancellationToken);
            await git.WaitForExitAsync(cancellationToken);
            return git.ExitCode == 0 ? text.Trim() : "";
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return "";
        }
    }
}
