using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Dtask.Executor.Processes;

/// <summary>How a child is put into a process group of its own.</summary>
public enum ChildStartMethod
{
    /// <summary><see cref="PosixSpawn"/> when <see cref="ChildProcessGroup.CanSpawn"/> says it is safe, else <see cref="Setsid"/>.</summary>
    Auto,

    /// <summary>glibc <c>posix_spawn</c> with <c>POSIX_SPAWN_SETSID</c>: one exec (<see cref="SpawnedChild"/>).</summary>
    PosixSpawn,

    /// <summary>.NET's <see cref="Process"/> starting <c>setsid CMD</c>: two execs, tracked by the runtime.</summary>
    Setsid,
}

/// <summary>
/// A started child that leads its own session and process group, so the whole tree it spawns (grandchildren too) can be
/// stopped at once. Two ways, the same containment (<c>getsid = getpgid = pid</c> before the command runs its first
/// instruction, or right after for <c>setsid</c>):
/// <list type="bullet">
/// <item><see cref="ChildStartMethod.PosixSpawn"/>: <c>posix_spawn</c> with <c>POSIX_SPAWN_SETSID</c>, one exec and a
/// thread that waits for the child. Used whenever the runtime reaps only the children it knows (see <see cref="CanSpawn"/>).</item>
/// <item><see cref="ChildStartMethod.Setsid"/>: .NET cannot call <c>setsid()</c> between fork and exec, so the child
/// is started through <c>setsid</c> (util-linux): started by .NET it is not a group leader, so it calls
/// <c>setsid()</c> and execs the command in the same process. <see cref="StartAsync"/> checks that
/// <c>getpgid(pid) == pid</c> before handing the group out. Used when this process is pid 1 (a container's entrypoint)
/// or was started with SIGCHLD ignored: the runtime then reaps every exited child, and would take a spawned child's exit
/// status before its own waiter could.</item>
/// </list>
/// </summary>
public sealed partial class ChildProcessGroup : IDisposable
{
    /// <summary>The program that puts the child into a new session and process group.</summary>
    public const string SetsidPath = "/usr/bin/setsid";

    private readonly TimeProvider time;
    private readonly Process? process;
    private readonly SpawnedChild? spawned;

    private ChildProcessGroup(Process process, TimeProvider time)
    {
        this.process = process;
        this.time = time;
        GroupId = process.Id;
        StandardOutput = process.StandardOutput.BaseStream;
        StandardError = process.StandardError.BaseStream;
    }

    private ChildProcessGroup(SpawnedChild spawned, TimeProvider time)
    {
        this.spawned = spawned;
        this.time = time;
        GroupId = spawned.ProcessId;
        StandardOutput = spawned.StandardOutput;
        StandardError = spawned.StandardError;
    }

    /// <summary>
    /// True when a child started with <c>posix_spawn</c> is this process's to reap: the runtime's SIGCHLD handling reaps
    /// every exited child (not only <see cref="Process"/>'s) when this process is pid 1 or SIGCHLD was ignored when it
    /// started (the runtime leaves an ignored SIGCHLD as it is), and the libc must have what the start needs.
    /// </summary>
    public static bool CanSpawn { get; } = SpawnedChild.Supported && Environment.ProcessId != 1 && !SigchldIgnored();

    /// <summary>The way <see cref="ChildStartMethod.Auto"/> starts children in this process.</summary>
    public static ChildStartMethod AutoMethod => CanSpawn ? ChildStartMethod.PosixSpawn : ChildStartMethod.Setsid;

    /// <summary>The group id: the main process's id.</summary>
    public int GroupId { get; }

    /// <summary>The child's stdout.</summary>
    public Stream StandardOutput { get; }

    /// <summary>The child's stderr.</summary>
    public Stream StandardError { get; }

    /// <summary>The main process's exit code (128 + the signal when a signal ended it), once <see cref="WaitForExitAsync"/> has completed.</summary>
    public int ExitCode => spawned is not null ? spawned.Exited.Result : process!.ExitCode;

    /// <summary>Completes when the main process has ended.</summary>
    public Task WaitForExitAsync(CancellationToken cancellationToken = default) =>
        spawned is not null ? spawned.Exited.WaitAsync(cancellationToken) : process!.WaitForExitAsync(cancellationToken);

    /// <summary>The live processes still in the group (the main process, its children, their children…).</summary>
    public IReadOnlyList<int> Members() => PosixProcessGroups.Members(GroupId);

    /// <summary>
    /// True when a live process is left in the group. A group with no process at all (the common case once the main
    /// process is reaped) is told by one <c>kill(-pgid, 0)</c>; only a group that still has one (possibly a zombie) is
    /// looked up in <c>/proc</c>, so a run costs no scan of every process on the machine.
    /// </summary>
    public bool HasMembers() => Signal(0) && Members().Count > 0;

    /// <summary>
    /// Starts <paramref name="start"/>'s program (with its arguments, environment and working directory) in a new
    /// session and process group, its stdin at end of file and its stdout and stderr on pipes. For
    /// <see cref="ChildStartMethod.Setsid"/> the start info's <c>FileName</c> and <c>ArgumentList</c> are rewritten to go
    /// through <c>setsid</c>; for <see cref="ChildStartMethod.PosixSpawn"/> its <c>FileName</c> must be a full path.
    /// </summary>
    /// <exception cref="System.ComponentModel.Win32Exception">The program could not be started.</exception>
    /// <exception cref="InvalidOperationException">The child did not become a group leader.</exception>
    public static async Task<ChildProcessGroup> StartAsync(ProcessStartInfo start, TimeProvider? time = null, ChildStartMethod method = ChildStartMethod.Auto)
    {
        ArgumentNullException.ThrowIfNull(start);
        time ??= TimeProvider.System;
        if (method == ChildStartMethod.Auto)
        {
            method = AutoMethod;
        }

        if (method == ChildStartMethod.PosixSpawn)
        {
            var spawned = SpawnedChild.Start(start.FileName, [start.FileName, .. start.ArgumentList], start.Environment, start.WorkingDirectory);
            return new ChildProcessGroup(spawned, time);
        }

        var program = start.FileName;
        var arguments = start.ArgumentList.ToList();
        start.FileName = File.Exists(SetsidPath) ? SetsidPath : "setsid";
        start.ArgumentList.Clear();
        start.ArgumentList.Add(program);
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        start.RedirectStandardInput = true;
        start.UseShellExecute = false;
        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        process.Start();
        process.StandardInput.Close(); // End of file at once, as /dev/null gives a spawned child.
        var group = new ChildProcessGroup(process, time);
        await group.AwaitGroupLeadershipAsync().ConfigureAwait(false);
        return group;
    }

    /// <summary>Sends a signal to the whole group; false when the group has no process left.</summary>
    public bool Signal(int signal) => PosixProcessGroups.SignalGroup(GroupId, signal);

    /// <summary>
    /// Stops the whole group: SIGTERM, then SIGKILL to whatever is left after <paramref name="grace"/> (the main
    /// process and every other member). Returns once no live member remains (or a last bounded wait expired).
    /// </summary>
    public async Task TerminateAsync(TimeSpan grace)
    {
        if (!Signal(PosixProcessGroups.SigTerm))
        {
            return;
        }

        var deadline = time.GetTimestamp();
        while (time.GetElapsedTime(deadline) < grace)
        {
            if (!HasMembers())
            {
                return;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(50), time).ConfigureAwait(false);
        }

        await KillAsync().ConfigureAwait(false);
    }

    /// <summary>SIGKILL to the group, then waits (at most 5 s) until no live member remains.</summary>
    public async Task KillAsync()
    {
        var started = time.GetTimestamp();
        while (Signal(PosixProcessGroups.SigKill) && HasMembers() && time.GetElapsedTime(started) < TimeSpan.FromSeconds(5))
        {
            await Task.Delay(TimeSpan.FromMilliseconds(20), time).ConfigureAwait(false);
        }
    }

    private async Task AwaitGroupLeadershipAsync()
    {
        // Process.Start returns once setsid has been exec'd; its setsid() call follows within microseconds.
        var process = this.process!;
        var started = time.GetTimestamp();
        var spinner = default(SpinWait);
        while (true)
        {
            var group = PosixProcessGroups.GroupOf(process.Id);
            if (group == process.Id || group is null || process.HasExited)
            {
                return; // A leader, or already gone (and then nothing is left to stop).
            }

            if (time.GetElapsedTime(started) > TimeSpan.FromSeconds(5))
            {
                process.Kill();
                throw new InvalidOperationException($"child {process.Id} did not become a process group leader (group {group})");
            }

            if (spinner.Count < 64)
            {
                // Almost always enough: a timer of 1 ms is 1 ms at best, and much more when a herd of starts shares the CPUs.
                spinner.SpinOnce(sleep1Threshold: -1);
                continue;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(1), time).ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        process?.Dispose();
        spawned?.Dispose();
    }

    private static unsafe bool SigchldIgnored()
    {
        const int sigchld = 17;
        var action = stackalloc byte[256]; // struct sigaction; its first member is the handler (SIG_IGN is 1).
        return SigAction(sigchld, null, action) == 0 && *(nint*)action == 1;
    }

    [LibraryImport("libc", EntryPoint = "sigaction")]
    private static unsafe partial int SigAction(int signal, void* action, void* old);
}
