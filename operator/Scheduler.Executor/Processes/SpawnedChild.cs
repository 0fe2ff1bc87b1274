using System.ComponentModel;
using System.IO.Pipes;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Dtask.Executor.Processes;

/// <summary>
/// A child started by glibc's <c>posix_spawn</c> with <c>POSIX_SPAWN_SETSID</c>: the child calls <c>setsid()</c>
/// between fork and exec, so it leads a new session and process group before the command runs, with one exec. Its
/// stdin is <c>/dev/null</c>, its stdout and stderr are pipes (created close-on-exec, so a child started at the same
/// moment by another thread inherits none of them), every signal is reset to its default action and none is blocked —
/// as .NET's <see cref="System.Diagnostics.Process"/> does. It is not one of <see cref="System.Diagnostics.Process"/>'s
/// children: a thread of its own waits for it (<c>waitpid</c> on its pid) and completes <see cref="Exited"/>. That is
/// only safe while the runtime reaps no child it does not track (see <see cref="ChildProcessGroup.CanSpawn"/>).
/// </summary>
public sealed unsafe partial class SpawnedChild : IDisposable
{
    private const short SetSignalDefaults = 0x04;
    private const short SetSignalMask = 0x08;
    private const short SetSession = 0x80;
    private const int CloseOnExec = 0x80000;
    private const int Eintr = 4;
    private const int AttributeBytes = 1024;
    private const int FileActionBytes = 1024;
    private const int SignalSetBytes = 128;

    private readonly TaskCompletionSource<int> exited = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private SpawnedChild(int pid, AnonymousPipeClientStream stdout, AnonymousPipeClientStream stderr)
    {
        ProcessId = pid;
        StandardOutput = stdout;
        StandardError = stderr;
    }

    /// <summary>The child's pid (and, as it leads them, its session and group id).</summary>
    public int ProcessId { get; }

    /// <summary>The read end of the child's stdout.</summary>
    public Stream StandardOutput { get; }

    /// <summary>The read end of the child's stderr.</summary>
    public Stream StandardError { get; }

    /// <summary>Completes when the child has ended and been reaped: its exit code, or 128 + the signal that ended it (as a shell says).</summary>
    public Task<int> Exited => exited.Task;

    /// <summary>
    /// Starts <paramref name="path"/> (a full path: nothing is searched) with <paramref name="argv"/> (argv[0] included),
    /// exactly the environment <paramref name="environment"/>, in <paramref name="workingDirectory"/> when given.
    /// </summary>
    /// <exception cref="Win32Exception">posix_spawn failed (the exec's own error included).</exception>
    public static SpawnedChild Start(string path, IReadOnlyList<string> argv, IEnumerable<KeyValuePair<string, string?>> environment, string? workingDirectory)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(argv);
        ArgumentNullException.ThrowIfNull(environment);
        var variables = environment.Where(v => v.Value is not null).Select(v => v.Key + "=" + v.Value).ToList();
        var strings = new List<nint>();
        var attr = NativeMemory.AllocZeroed(AttributeBytes);
        var actions = NativeMemory.AllocZeroed(FileActionBytes);
        var mask = NativeMemory.AllocZeroed(SignalSetBytes);
        var defaults = NativeMemory.AllocZeroed(SignalSetBytes);
        var args = (byte**)NativeMemory.AllocZeroed((nuint)(argv.Count + 1), (nuint)sizeof(byte*));
        var envp = (byte**)NativeMemory.AllocZeroed((nuint)(variables.Count + 1), (nuint)sizeof(byte*));
        var outPipe = stackalloc int[2] { -1, -1 };
        var errPipe = stackalloc int[2] { -1, -1 };
        try
        {
            byte* Utf8(string s)
            {
                var p = Marshal.StringToCoTaskMemUTF8(s);
                strings.Add(p);
                return (byte*)p;
            }

            for (var i = 0; i < argv.Count; i++)
            {
                args[i] = Utf8(argv[i]);
            }

            for (var i = 0; i < variables.Count; i++)
            {
                envp[i] = Utf8(variables[i]);
            }

            if (Pipe2(outPipe, CloseOnExec) != 0 || Pipe2(errPipe, CloseOnExec) != 0)
            {
                throw new Win32Exception(Marshal.GetLastPInvokeError());
            }

            Check(AttrInit(attr));
            Check(FileActionsInit(actions));
            try
            {
                Check(SignalEmptySet(mask));
                Check(SignalFillSet(defaults));
                Check(AttrSetSignalMask(attr, mask));
                Check(AttrSetSignalDefaults(attr, defaults));
                Check(AttrSetFlags(attr, SetSession | SetSignalMask | SetSignalDefaults));
                if (!string.IsNullOrEmpty(workingDirectory))
                {
                    Check(FileActionsAddChdir(actions, Utf8(workingDirectory)));
                }

                Check(FileActionsAddOpen(actions, 0, Utf8("/dev/null"), 0, 0));
                Check(FileActionsAddDup2(actions, outPipe[1], 1));
                Check(FileActionsAddDup2(actions, errPipe[1], 2));
                var error = Spawn(out var pid, Utf8(path), actions, attr, args, envp);
                if (error != 0)
                {
                    throw new Win32Exception(error);
                }

                _ = Close(outPipe[1]);
                _ = Close(errPipe[1]);
                outPipe[1] = errPipe[1] = -1;
                var stdout = new AnonymousPipeClientStream(PipeDirection.In, new SafePipeHandle(outPipe[0], ownsHandle: true));
                outPipe[0] = -1;
                var stderr = new AnonymousPipeClientStream(PipeDirection.In, new SafePipeHandle(errPipe[0], ownsHandle: true));
                errPipe[0] = -1;
                var child = new SpawnedChild(pid, stdout, stderr);
                child.StartWaiter();
                return child;
            }
            finally
            {
                _ = FileActionsDestroy(actions);
                _ = AttrDestroy(attr);
            }
        }
        finally
        {
            foreach (var fd in new[] { outPipe[0], outPipe[1], errPipe[0], errPipe[1] })
            {
                if (fd >= 0)
                {
                    _ = Close(fd);
                }
            }

            foreach (var p in strings)
            {
                Marshal.FreeCoTaskMem(p);
            }

            NativeMemory.Free(args);
            NativeMemory.Free(envp);
            NativeMemory.Free(mask);
            NativeMemory.Free(defaults);
            NativeMemory.Free(actions);
            NativeMemory.Free(attr);
        }
    }

    /// <summary>
    /// True when this libc can start a child in a working directory of its own (<c>posix_spawn_file_actions_addchdir_np</c>,
    /// glibc 2.29 and later) and with <c>POSIX_SPAWN_SETSID</c>.
    /// </summary>
    public static bool Supported { get; } = Probe();

    /// <inheritdoc />
    public void Dispose()
    {
        StandardOutput.Dispose();
        StandardError.Dispose();
    }

    private void StartWaiter()
    {
        // A small thread that only waits: the wait blocks in the kernel, never a thread of the pool.
        var waiter = new Thread(() =>
        {
            try
            {
                exited.TrySetResult(WaitForExit(ProcessId));
            }
            catch (Win32Exception e)
            {
                exited.TrySetException(e);
            }
        }, 128 * 1024)
        {
            IsBackground = true,
            Name = "dtask child wait",
        };
        waiter.Start();
    }

    private static int WaitForExit(int pid)
    {
        int status;
        while (WaitPid(pid, &status, 0) < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno != Eintr)
            {
                throw new Win32Exception(errno, $"waitpid({pid}) failed");
            }
        }

        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f);
    }

    private static bool Probe() =>
        OperatingSystem.IsLinux() && NativeLibrary.TryLoad("libc.so.6", out var libc)
        && NativeLibrary.TryGetExport(libc, "posix_spawn_file_actions_addchdir_np", out _);

    private static void Check(int error)
    {
        if (error != 0)
        {
            throw new Win32Exception(error);
        }
    }

    [LibraryImport("libc", EntryPoint = "posix_spawn")]
    private static partial int Spawn(out int pid, byte* path, void* fileActions, void* attributes, byte** argv, byte** envp);

    [LibraryImport("libc", EntryPoint = "posix_spawnattr_init")]
    private static partial int AttrInit(void* attributes);

    [LibraryImport("libc", EntryPoint = "posix_spawnattr_destroy")]
    private static partial int AttrDestroy(void* attributes);

    [LibraryImport("libc", EntryPoint = "posix_spawnattr_setflags")]
    private static partial int AttrSetFlags(void* attributes, short flags);

    [LibraryImport("libc", EntryPoint = "posix_spawnattr_setsigmask")]
    private static partial int AttrSetSignalMask(void* attributes, void* mask);

    [LibraryImport("libc", EntryPoint = "posix_spawnattr_setsigdefault")]
    private static partial int AttrSetSignalDefaults(void* attributes, void* signals);

    [LibraryImport("libc", EntryPoint = "posix_spawn_file_actions_init")]
    private static partial int FileActionsInit(void* actions);

    [LibraryImport("libc", EntryPoint = "posix_spawn_file_actions_destroy")]
    private static partial int FileActionsDestroy(void* actions);

    [LibraryImport("libc", EntryPoint = "posix_spawn_file_actions_adddup2")]
    private static partial int FileActionsAddDup2(void* actions, int fd, int newFd);

    [LibraryImport("libc", EntryPoint = "posix_spawn_file_actions_addopen")]
    private static partial int FileActionsAddOpen(void* actions, int fd, byte* path, int flags, uint mode);

    [LibraryImport("libc", EntryPoint = "posix_spawn_file_actions_addchdir_np")]
    private static partial int FileActionsAddChdir(void* actions, byte* path);

    [LibraryImport("libc", EntryPoint = "sigemptyset")]
    private static partial int SignalEmptySet(void* set);

    [LibraryImport("libc", EntryPoint = "sigfillset")]
    private static partial int SignalFillSet(void* set);

    [LibraryImport("libc", EntryPoint = "pipe2", SetLastError = true)]
    private static partial int Pipe2(int* fds, int flags);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "waitpid", SetLastError = true)]
    private static partial int WaitPid(int pid, int* status, int options);
}
