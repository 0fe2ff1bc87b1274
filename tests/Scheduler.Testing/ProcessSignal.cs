using System.Diagnostics;
using System.Globalization;

namespace Dtask.Testing;

/// <summary>Sends POSIX signals to processes and process groups, with the system's <c>kill</c> command.</summary>
public static class ProcessSignal
{
    /// <summary>SIGTERM: ask to stop.</summary>
    public const string Terminate = "TERM";

    /// <summary>SIGKILL: stop at once, no clean-up.</summary>
    public const string Kill = "KILL";

    /// <summary>SIGSTOP: freeze (cannot be caught), as a paused VM or a long stall would.</summary>
    public const string Stop = "STOP";

    /// <summary>SIGCONT: resume a frozen process.</summary>
    public const string Continue = "CONT";

    /// <summary>Sends <paramref name="signal"/> (a name such as <c>STOP</c>) to process <paramref name="pid"/>; false when it is gone.</summary>
    public static bool Send(int pid, string signal) => Run(signal, pid.ToString(CultureInfo.InvariantCulture));

    /// <summary>Sends <paramref name="signal"/> to every process of group <paramref name="pgid"/>; false when the group is empty.</summary>
    public static bool SendToGroup(int pgid, string signal) => Run(signal, "-" + pgid.ToString(CultureInfo.InvariantCulture));

    private static bool Run(string signal, string target)
    {
        ArgumentException.ThrowIfNullOrEmpty(signal);
        var start = new ProcessStartInfo("kill")
        {
            UseShellExecute = false,
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        };
        start.ArgumentList.Add("-" + signal);
        start.ArgumentList.Add("--");
        start.ArgumentList.Add(target);
        using var kill = Process.Start(start) ?? throw new InvalidOperationException("cannot run kill");
        kill.StandardError.ReadToEnd();
        kill.WaitForExit();
        return kill.ExitCode == 0;
    }
}
