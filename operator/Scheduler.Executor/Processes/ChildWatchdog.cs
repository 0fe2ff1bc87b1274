using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Reflection;

namespace Dtask.Executor.Processes;

/// <summary>
/// The owner's side of the child watchdog: a small <c>dtask __watchdog</c> process (<see cref="WatchdogProgram"/>), started
/// in a session of its own through <c>setsid</c> (a signal to the owner's process group does not reach it), that stops
/// the owner's children when the owner dies, whatever kills it, without the owner running any cleanup.
/// </summary>
/// <remarks>
/// <para>The owner keeps the write end of a pipe whose read end is the watchdog's stdin; .NET opens it close-on-exec,
/// so no child inherits it, and the kernel closes it when the owner dies: the watchdog sees end of input. Each child
/// group is registered when it starts (<see cref="Register"/>) and unregistered when it ends; after every successful
/// session renewal the owner sends a lease (<see cref="Lease"/>). On end of input, or when the last lease runs out,
/// the watchdog sends SIGTERM to every registered group and every process that carries <see cref="MarkerVariable"/>
/// with this watchdog's marker (children get it in their environment: it covers the instant between the start of a
/// child and its registration, and grandchildren that left the group), waits the termination grace, and SIGKILLs
/// what is left. <see cref="Dispose"/> (an orderly stop) writes <c>exit</c> first: the watchdog leaves without
/// signalling anything.</para>
/// <para>A write that fails (the watchdog is gone) is counted in <see cref="Failures"/>, never thrown. A watchdog
/// that dies while the owner lives (killed by hand, by the OOM killer) is started again at once, with the same marker,
/// every group still registered and the lease in force, and <see cref="Restarted"/> says so; after
/// <see cref="MaxRestarts"/> restarts within a minute it is left dead and the owner goes on, unguarded. A watchdog made with <see cref="Deferred"/> starts its process only when the first child is about to
/// start (<see cref="EnsureRunning"/>), and hands it the lease then: <c>dtask run</c> callers that find the slot taken
/// never pay for it.</para>
/// </remarks>
public sealed class ChildWatchdog : IDisposable
{
    /// <summary>The variable that marks the owner's children: its marker, after the markers of the owner's own owners (colon-separated).</summary>
    public const string MarkerVariable = "DTASK_INSTANCE";

    /// <summary>
    /// How long SIGKILLed processes are given to be gone, budgeted after the termination grace (the kernel ends a killed
    /// process at once unless it waits in the kernel, e.g. on a hung NFS mount).
    /// </summary>
    public static readonly TimeSpan KillWait = TimeSpan.FromSeconds(1);

    private readonly TimeSpan grace;
    private readonly IReadOnlyList<string> self;
    /// <summary>How many times a watchdog that died is started again within a minute before it is left dead.</summary>
    public const int MaxRestarts = 5;

    private readonly Lock gate = new();
    private readonly HashSet<int> groups = [];
    private readonly Queue<long> restarts = new();
    private Process? process;
    private StreamWriter? input;
    private long? leaseEnds;
    private int failures;
    private bool closed;
    private bool exited;

    private ChildWatchdog(TimeSpan grace, IReadOnlyList<string> self)
    {
        this.grace = grace;
        this.self = self;
        Marker = Guid.NewGuid().ToString("N");
        var inherited = Environment.GetEnvironmentVariable(MarkerVariable);
        MarkerValue = string.IsNullOrEmpty(inherited) ? Marker : inherited + ":" + Marker;
    }

    /// <summary>This watchdog's marker (a random id).</summary>
    public string Marker { get; }

    /// <summary>The value of <see cref="MarkerVariable"/> in the children's environment.</summary>
    public string MarkerValue { get; }

    /// <summary>How many commands could not be written (the watchdog is gone).</summary>
    public int Failures => Volatile.Read(ref failures);

    /// <summary>
    /// Raised (on a thread-pool thread) when the watchdog process died while the owner lives, with what was done: started
    /// again, or left dead after too many restarts.
    /// </summary>
    public event Action<string>? Restarted;

    /// <summary>The watchdog process id, while one runs.</summary>
    internal int? ProcessId
    {
        get
        {
            lock (gate)
            {
                return process is { HasExited: false } running ? running.Id : null;
            }
        }
    }

    /// <summary>True once the watchdog process has exited (false while it was never started).</summary>
    internal bool HasExited
    {
        get
        {
            lock (gate)
            {
                return exited || (process?.HasExited ?? false);
            }
        }
    }

    /// <summary>
    /// How to start this same <c>dtask</c>: the running executable, or <c>dotnet</c> with the entry assembly when it runs
    /// as <c>dotnet dtask.dll</c>.
    /// </summary>
    public static IReadOnlyList<string> SelfCommand()
    {
        var executable = Environment.ProcessPath ?? throw new InvalidOperationException("the path of the running executable is unknown");
        var host = Path.GetFileNameWithoutExtension(executable);
        return host == "dotnet" && Assembly.GetEntryAssembly()?.Location is { Length: > 0 } dll ? [executable, "exec", dll] : [executable];
    }

    /// <summary>Starts a watchdog whose stop waits <paramref name="grace"/> between SIGTERM and SIGKILL.</summary>
    /// <param name="grace">The termination grace.</param>
    /// <param name="self">How to start <c>dtask</c>; <see cref="SelfCommand"/> when null.</param>
    /// <exception cref="Win32Exception">It could not be started.</exception>
    public static ChildWatchdog Start(TimeSpan grace, IReadOnlyList<string>? self = null)
    {
        var watchdog = Deferred(grace, self);
        watchdog.EnsureRunning();
        return watchdog;
    }

    /// <summary>A watchdog whose process starts at the first <see cref="EnsureRunning"/> (a <see cref="ChildRunner"/> calls it before each child).</summary>
    /// <param name="grace">The termination grace.</param>
    /// <param name="self">How to start <c>dtask</c>; <see cref="SelfCommand"/> when null.</param>
    public static ChildWatchdog Deferred(TimeSpan grace, IReadOnlyList<string>? self = null) => new(grace, self ?? SelfCommand());

    /// <summary>Starts the watchdog process unless it runs already, and hands it the lease in force.</summary>
    /// <exception cref="Win32Exception">It could not be started.</exception>
    public void EnsureRunning()
    {
        lock (gate)
        {
            if (process is not null || closed)
            {
                return;
            }

            Launch();
        }
    }

    /// <summary>Starts the process and hands it the groups and the lease in force; the caller holds the gate.</summary>
    private void Launch()
    {
        var start = new ProcessStartInfo(File.Exists(ChildProcessGroup.SetsidPath) ? ChildProcessGroup.SetsidPath : "setsid")
        {
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var word in self)
        {
            start.ArgumentList.Add(word);
        }

        start.ArgumentList.Add(WatchdogProgram.CommandName);
        start.ArgumentList.Add(((long)grace.TotalMilliseconds).ToString(CultureInfo.InvariantCulture));
        start.ArgumentList.Add(Marker);
        // One workstation heap without a background GC thread, whatever the owner's runtime settings.
        start.Environment["DOTNET_gcServer"] = "0";
        start.Environment["DOTNET_gcConcurrent"] = "0";
        var started = new Process { StartInfo = start, EnableRaisingEvents = true };
        started.Exited += OnExited;
        started.Start();
        process = started;
        input = started.StandardInput;
        input.AutoFlush = true;
        input.NewLine = "\n";
        foreach (var group in groups)
        {
            Write(new WatchdogLine(WatchdogVerb.Register, group));
        }

        if (leaseEnds is { } ends)
        {
            Write(new WatchdogLine(WatchdogVerb.Lease, Math.Max(0, (long)Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), ends).TotalMilliseconds)));
        }
    }

    private void OnExited(object? sender, EventArgs e)
    {
        string what;
        lock (gate)
        {
            if (closed || !ReferenceEquals(sender, process))
            {
                return; // An orderly end, an abandon, or a process already replaced.
            }

            var now = Stopwatch.GetTimestamp();
            while (restarts.Count > 0 && Stopwatch.GetElapsedTime(restarts.Peek(), now) > TimeSpan.FromMinutes(1))
            {
                restarts.Dequeue();
            }

            var dead = process!;
            var code = dead.ExitCode;
            input = null;
            process = null;
            dead.Dispose();
            if (restarts.Count >= MaxRestarts)
            {
                exited = true;
                what = $"died (exit {code}) {MaxRestarts + 1} times within a minute; it is not started again, and children are not stopped if this process dies";
            }
            else
            {
                restarts.Enqueue(now);
                try
                {
                    Launch();
                    what = $"died (exit {code}); started again (pid {process?.Id}) with {groups.Count} running group(s)";
                }
                catch (Exception ex) when (ex is Win32Exception or InvalidOperationException)
                {
                    exited = true;
                    what = $"died (exit {code}) and could not be started again: {ex.Message}";
                }
            }
        }

        Restarted?.Invoke(what);
    }

    /// <summary>Registers a child's process group: it is stopped if the owner dies before <see cref="Unregister"/>.</summary>
    public void Register(int processGroupId)
    {
        lock (gate)
        {
            groups.Add(processGroupId);
            Write(new WatchdogLine(WatchdogVerb.Register, processGroupId));
        }
    }

    /// <summary>Forgets a child's process group (it ended).</summary>
    public void Unregister(int processGroupId)
    {
        lock (gate)
        {
            groups.Remove(processGroupId);
            Write(new WatchdogLine(WatchdogVerb.Unregister, processGroupId));
        }
    }

    /// <summary>The owner's session is known valid for <paramref name="valid"/> more: if no newer lease comes by then, the children are stopped.</summary>
    public void Lease(TimeSpan valid)
    {
        var ms = Math.Max(0, (long)valid.TotalMilliseconds);
        lock (gate)
        {
            leaseEnds = Stopwatch.GetTimestamp() + (long)(ms / 1000.0 * Stopwatch.Frequency);
            Write(new WatchdogLine(WatchdogVerb.Lease, ms));
        }
    }

    private void Write(WatchdogLine line)
    {
        if (closed || input is null)
        {
            return;
        }

        try
        {
            input.WriteLine(line.ToString());
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            Interlocked.Increment(ref failures);
        }
    }

    /// <summary>
    /// Closes the pipe without <c>exit</c>, as the kernel does when the owner dies: the watchdog stops every child it knows
    /// of. Returns once the watchdog has left, or after <paramref name="within"/>.
    /// </summary>
    public void Abandon(TimeSpan within) => Close(orderly: false, within);

    /// <summary>The orderly end: writes <c>exit</c>, closes the pipe and waits (briefly) for the watchdog to leave.</summary>
    public void Dispose() => Close(orderly: true, TimeSpan.FromSeconds(5));

    private void Close(bool orderly, TimeSpan within)
    {
        Process? running;
        lock (gate)
        {
            if (closed)
            {
                return;
            }

            if (orderly)
            {
                Write(new WatchdogLine(WatchdogVerb.Exit, 0));
            }

            closed = true;
            running = process;
            try
            {
                input?.Dispose();
            }
            catch (IOException)
            {
                // Already gone.
            }
        }

        if (running is not null)
        {
            var left = running.WaitForExit(within);
            lock (gate)
            {
                exited = left;
                process = null;
            }

            running.Dispose();
        }
    }
}
