using System.Runtime.InteropServices;

namespace Dtask.Bench.Processes;

/// <summary>
/// Raises this process's open-file limit (RLIMIT_NOFILE), inherited by the agents it starts: hundreds of in-process
/// executors hold tens of connections each to one agent on loopback (a real fleet spreads them over one agent per node),
/// and every one is a descriptor on both sides, twice more through a forwarder.
/// </summary>
internal static partial class OpenFileLimit
{
    private const int RlimitNofile = 7;

    /// <summary>Raises the soft limit to <paramref name="wanted"/> (and the hard one when allowed: as root); returns the soft limit now.</summary>
    public static ulong Raise(ulong wanted)
    {
        if (!OperatingSystem.IsLinux() || GetRlimit(RlimitNofile, out var current) != 0)
        {
            return 0;
        }

        if (current.Soft >= wanted)
        {
            return current.Soft;
        }

        var raised = new Rlimit { Soft = wanted, Hard = Math.Max(wanted, current.Hard) };
        if (SetRlimit(RlimitNofile, in raised) != 0)
        {
            // Not allowed to raise the hard limit: up to it.
            raised = new Rlimit { Soft = Math.Min(wanted, current.Hard), Hard = current.Hard };
            _ = SetRlimit(RlimitNofile, in raised);
        }

        return GetRlimit(RlimitNofile, out var now) == 0 ? now.Soft : 0;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct Rlimit
    {
        public ulong Soft;
        public ulong Hard;
    }

    [LibraryImport("libc", EntryPoint = "getrlimit", SetLastError = true)]
    private static partial int GetRlimit(int resource, out Rlimit limit);

    [LibraryImport("libc", EntryPoint = "setrlimit", SetLastError = true)]
    private static partial int SetRlimit(int resource, in Rlimit limit);
}
