using System.Runtime.InteropServices;

namespace Dtask.Bench.Processes;

/// <summary>POSIX signals to a process.</summary>
internal static partial class Signals
{
    /// <summary>SIGTERM.</summary>
    public const int Terminate = 15;

    /// <summary>Sends <paramref name="signal"/> to <paramref name="pid"/>; false when it is gone.</summary>
    public static bool Send(int pid, int signal) => Kill(pid, signal) == 0;

    /// <summary>The session of <paramref name="pid"/>, or -1 when it is gone.</summary>
    public static int SessionOf(int pid) => GetSid(pid);

    [LibraryImport("libc", EntryPoint = "getsid")]
    private static partial int GetSid(int pid);

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
