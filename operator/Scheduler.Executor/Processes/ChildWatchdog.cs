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
/// <para>A write that fails (the watchdog is gone) is counted in <see cref="Failures"/>, never thrown: the owner goes
/// on, unguarded.</para>
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

    private readonly Process process;
    private readonly StreamWriter input;
    private readonly Lock gate = new();
    private int failures;
    private bool closed;
    private bool disposed;
    private bool exitedBeforeDispose;

    private ChildWatchdog(Process process, string marker)
    {
        this.process = process;
        input = process.StandardInput;
        input.AutoFlush = true;
        input.NewLine = "\n";
        Marker = marker;
        var inherited = Environment.GetEnvironmentVariable(MarkerVariable);
        MarkerValue = string.IsNullOrEmpty(inherited) ? marker : inherited + ":" + marker;
    }

    /// <summary>This watchdog's marker (a random id).</summary>
    public string Marker { get; }

    /// <summary>The value of <see cref="MarkerVariable"/> in the children's environment.</summary>
    public string MarkerValue { get; }

    /// <summary>The watchdog's process id.</summary>
    public int ProcessId => process.Id;

    /// <summary>How many commands could not be written (the watchdog is gone).</summary>
    public int Failures => Volatile.Read(ref failures);

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
        self ??= SelfCommand();
        var marker = Guid.NewGuid().ToString("N");
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
        start.ArgumentList.Add(marker);
        // One workstation heap without a background GC thread, whatever the owner's runtime settings.
        start.Environment["DOTNET_gcServer"] = "0";
        start.Environment["DOTNET_gcConcurrent"] = "0";
        var process = new Process { StartInfo = start };
        process.Start();
        return new ChildWatchdog(process, marker);
    }

    /// <summary>Registers a child's process group: it is stopped if the owner dies before <see cref="Unregister"/>.</summary>
    public void Register(int processGroupId) => Send(new WatchdogLine(WatchdogVerb.Register, processGroupId));

    /// <summary>Forgets a child's process group (it ended).</summary>
    public void Unregister(int processGroupId) => Send(new WatchdogLine(WatchdogVerb.Unregister, processGroupId));

    /// <summary>The owner's session is known valid for <paramref name="valid"/> more: if no newer lease comes by then, the children are stopped.</summary>
    public void Lease(TimeSpan valid) =>
        Send(new WatchdogLine(WatchdogVerb.Lease, Math.Max(0, (long)valid.TotalMilliseconds)));

    private void Send(WatchdogLine line)
    {
        lock (gate)
        {
            if (closed)
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
    }

    /// <summary>Closes the pipe without <c>exit</c>, as the kernel does when the owner dies; returns once the watchdog has left.</summary>
    internal void CloseAsIfDead(TimeSpan within)
    {
        lock (gate)
        {
            closed = true;
            input.Dispose();
        }

        process.WaitForExit(within);
    }

    /// <summary>True once the watchdog process has exited.</summary>
    internal bool HasExited => disposed ? exitedBeforeDispose : process.HasExited;

    /// <summary>The orderly end: writes <c>exit</c>, closes the pipe and waits (briefly) for the watchdog to leave.</summary>
    public void Dispose()
    {
        Send(new WatchdogLine(WatchdogVerb.Exit, 0));
        lock (gate)
        {
            if (closed)
            {
                if (!disposed)
                {
                    disposed = true;
                    exitedBeforeDispose = process.HasExited;
                    process.Dispose();
                }

                return;
            }

            closed = true;
            try
            {
                input.Dispose();
            }
            catch (IOException)
            {
                // Already gone.
            }
        }

        exitedBeforeDispose = process.WaitForExit(TimeSpan.FromSeconds(5));
        disposed = true;
        process.Dispose();
    }
}
