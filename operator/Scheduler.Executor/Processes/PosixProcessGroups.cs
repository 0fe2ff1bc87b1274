using System.Globalization;
using System.Runtime.InteropServices;

namespace Dtask.Executor.Processes;

/// <summary>The libc calls and <c>/proc</c> reads that process groups need (Linux).</summary>
internal static partial class PosixProcessGroups
{
    /// <summary>SIGKILL.</summary>
    public const int SigKill = 9;

    /// <summary>SIGTERM.</summary>
    public const int SigTerm = 15;

    private const int Esrch = 3;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    [LibraryImport("libc", EntryPoint = "getpgid", SetLastError = true)]
    private static partial int GetPgid(int pid);

    [LibraryImport("libc", EntryPoint = "getppid")]
    private static partial int GetPpid();

    /// <summary>This process's parent (1, or a subreaper, once the parent is gone).</summary>
    public static int ParentId() => GetPpid();

    /// <summary>Sends <paramref name="signal"/> to process <paramref name="pid"/>; false when it is gone or may not be signalled.</summary>
    public static bool SignalProcess(int pid, int signal) => pid > 1 && Kill(pid, signal) == 0;

    /// <summary>Sends <paramref name="signal"/> to every process of group <paramref name="pgid"/>; false when the group is empty.</summary>
    public static bool SignalGroup(int pgid, int signal)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(pgid, 1);
        if (Kill(-pgid, signal) == 0)
        {
            return true;
        }

        var errno = Marshal.GetLastPInvokeError();
        return errno == Esrch ? false : throw new InvalidOperationException($"kill(-{pgid}, {signal}) failed with errno {errno}");
    }

    /// <summary>The process group of <paramref name="pid"/>, or null when the process is gone.</summary>
    public static int? GroupOf(int pid)
    {
        var pgid = GetPgid(pid);
        return pgid >= 0 ? pgid : null;
    }

    /// <summary>
    /// The live members of group <paramref name="pgid"/>, read from <c>/proc/*/stat</c>. Zombies (exited, waiting
    /// to be reaped by their parent) are not counted: they run nothing and hold no resources but a table entry.
    /// </summary>
    public static IReadOnlyList<int> Members(int pgid)
    {
        var members = new List<int>();
        foreach (var directory in Directory.EnumerateDirectories("/proc"))
        {
            var name = Path.GetFileName(directory);
            if (!int.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            {
                continue;
            }

            string stat;
            try
            {
                stat = File.ReadAllText(Path.Combine(directory, "stat"));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                continue; // Exited while we looked.
            }

            // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so parse after the last ')'.
            var close = stat.LastIndexOf(')');
            if (close < 0)
            {
                continue;
            }

            var fields = stat[(close + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length > 2 && fields[0] != "Z" && fields[0] != "X"
                && int.TryParse(fields[2], NumberStyles.None, CultureInfo.InvariantCulture, out var group) && group == pgid)
            {
                members.Add(pid);
            }
        }

        return members;
    }
}
