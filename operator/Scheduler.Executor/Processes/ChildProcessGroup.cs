using System.Diagnostics;

namespace Dtask.Executor.Processes;

/// <summary>
/// A started child that leads its own process group, so the whole tree it spawns (grandchildren too) can be stopped
/// at once. .NET cannot call <c>setsid()</c> between fork and exec, so the child is started through
/// <c>setsid</c> (util-linux): started by .NET it is not a group leader, so it calls <c>setsid()</c> and execs
/// the command in the same process. <see cref="StartAsync"/> checks that <c>getpgid(pid) == pid</c> before handing
/// the group out.
/// </summary>
public sealed class ChildProcessGroup : IDisposable
{
    /// <summary>The program that puts the child into a new session and process group.</summary>
    public const string SetsidPath = "/usr/bin/setsid";

    private readonly TimeProvider time;

    private ChildProcessGroup(Process process, TimeProvider time)
    {
        Process = process;
        this.time = time;
    }

    /// <summary>The main process (its stdout and stderr are redirected).</summary>
    public Process Process { get; }

    /// <summary>The group id: the main process's id.</summary>
    public int GroupId => Process.Id;

    /// <summary>The live processes still in the group (the main process, its children, their children…).</summary>
    public IReadOnlyList<int> Members() => PosixProcessGroups.Members(GroupId);

    /// <summary>
    /// True when a live process is left in the group. A group with no process at all (the common case once the main
    /// process is reaped) is told by one <c>kill(-pgid, 0)</c>; only a group that still has one (possibly a zombie) is
    /// looked up in <c>/proc</c>, so a run costs no scan of every process on the machine.
    /// </summary>
    public bool HasMembers() => Signal(0) && Members().Count > 0;

    /// <summary>
    /// Starts <paramref name="start"/>'s program (with its arguments) in a new process group. The start info's
    /// <c>FileName</c> and <c>ArgumentList</c> are rewritten to go through <c>setsid</c>.
    /// </summary>
    /// <exception cref="System.ComponentModel.Win32Exception">The program could not be started.</exception>
    /// <exception cref="InvalidOperationException">The child did not become a group leader.</exception>
    public static async Task<ChildProcessGroup> StartAsync(ProcessStartInfo start, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(start);
        time ??= TimeProvider.System;
        var program = start.FileName;
        var arguments = start.ArgumentList.ToList();
        start.FileName = File.Exists(SetsidPath) ? SetsidPath : "setsid";
        start.ArgumentList.Clear();
        start.ArgumentList.Add(program);
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        process.Start();
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
        var started = time.GetTimestamp();
        var spinner = default(SpinWait);
        while (true)
        {
            var group = PosixProcessGroups.GroupOf(Process.Id);
            if (group == Process.Id || group is null || Process.HasExited)
            {
                return; // A leader, or already gone (and then nothing is left to stop).
            }

            if (time.GetElapsedTime(started) > TimeSpan.FromSeconds(5))
            {
                Process.Kill();
                throw new InvalidOperationException($"child {Process.Id} did not become a process group leader (group {group})");
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
    public void Dispose() => Process.Dispose();
}
