using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace Dtask.Executor.Processes;

/// <summary>
/// The child watchdog's own program (<c>dtask __watchdog GRACE_MS MARKER</c>), started by <see cref="ChildWatchdog"/> in a
/// session of its own. It reads <see cref="WatchdogProtocol"/> lines from stdin and keeps the set of registered process
/// groups. When its input ends (the owner died, whatever the signal) or the owner's last lease runs out (the owner is
/// paused or cannot renew its session), it stops every registered group and every process whose environment carries
/// its marker: SIGTERM, then SIGKILL to whatever is left after the grace. On end of input it then exits; after an
/// expired lease it goes on (the owner may come back and start new children under a new session).
/// </summary>
/// <remarks>
/// Deliberately small: no host, no logging framework, no Consul; a blocking read of stdin on the main thread and a
/// one-shot timer that checks the lease and the parent every 200 ms. It writes a line to stderr (the owner's) only
/// when it stops something. SIGTERM, SIGINT and SIGHUP are ignored: it ends with its owner (or by SIGKILL).
/// </remarks>
public static class WatchdogProgram
{
    /// <summary>The hidden subcommand of <c>dtask</c> that runs the watchdog.</summary>
    public const string CommandName = "__watchdog";

    /// <summary>The exit code after bad arguments.</summary>
    public const int UsageExitCode = 64;

    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(200);

    /// <summary>Runs the watchdog with the arguments after <see cref="CommandName"/>; returns the exit code.</summary>
    public static int Run(IReadOnlyList<string> arguments, TextReader input, TextWriter error)
    {
        ArgumentNullException.ThrowIfNull(arguments);
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(error);
        if (arguments.Count != 2 || !long.TryParse(arguments[0], NumberStyles.None, CultureInfo.InvariantCulture, out var graceMs)
            || string.IsNullOrWhiteSpace(arguments[1]) || arguments[1].Contains(':', StringComparison.Ordinal))
        {
            error.WriteLine($"dtask {CommandName}: expected GRACE_MILLISECONDS MARKER");
            return UsageExitCode;
        }

        // It ends with its owner, not on a stray signal meant for the executor (SIGINT, SIGTERM, SIGHUP to "every dtask").
        using var onTerm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => c.Cancel = true);
        using var onInt = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => c.Cancel = true);
        using var onHup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, c => c.Cancel = true);
        var state = new WatchdogState(TimeSpan.FromMilliseconds(graceMs), arguments[1], error);
        var parent = PosixProcessGroups.ParentId();
        using var ticking = new Timer(self =>
        {
            if (PosixProcessGroups.ParentId() != parent)
            {
                state.StopAll("its owner is gone", ownerGone: true);
                Environment.Exit(0);
            }

            state.CheckLease();
            ((Timer)self!).Change(Tick, Timeout.InfiniteTimeSpan);
        });
        ticking.Change(Tick, Timeout.InfiniteTimeSpan);
        try
        {
            while (input.ReadLine() is { } text)
            {
                if (WatchdogProtocol.Parse(text) is not { } line)
                {
                    continue;
                }

                if (line.Verb == WatchdogVerb.Exit)
                {
                    return 0;
                }

                state.Apply(line);
            }
        }
        catch (IOException)
        {
            // The pipe broke: the same as its end.
        }

        state.StopAll("its owner is gone", ownerGone: true);
        return 0;
    }

    /// <summary>The registered groups, the lease, and how to stop them all.</summary>
    private sealed class WatchdogState(TimeSpan grace, string marker, TextWriter error)
    {
        private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(50);
        private readonly Lock gate = new();
        private readonly Lock stopping = new();
        private readonly HashSet<int> groups = [];
        private long? leaseEnds;

        public void Apply(WatchdogLine line)
        {
            lock (gate)
            {
                switch (line.Verb)
                {
                    case WatchdogVerb.Register:
                        groups.Add((int)line.Value);
                        break;
                    case WatchdogVerb.Unregister:
                        groups.Remove((int)line.Value);
                        break;
                    case WatchdogVerb.Lease:
                        leaseEnds = Stopwatch.GetTimestamp() + (long)(line.Value / 1000.0 * Stopwatch.Frequency);
                        break;
                }
            }
        }

        public void CheckLease()
        {
            lock (gate)
            {
                if (leaseEnds is not { } ends || Stopwatch.GetTimestamp() < ends)
                {
                    return;
                }

                leaseEnds = null;
            }

            StopAll("its owner's session lease ran out", ownerGone: false);
        }

        /// <summary>
        /// Stops the groups registered now and the marked processes: SIGTERM, SIGKILL after the grace. When the owner is
        /// gone, every round looks for marked processes again (nothing legitimate can start any more); after an expired
        /// lease only those marked at the start are stopped, so that children the owner starts under a new lease live.
        /// </summary>
        public void StopAll(string why, bool ownerGone)
        {
            lock (stopping)
            {
                HashSet<int> stopped;
                lock (gate)
                {
                    stopped = [.. groups];
                }

                var self = Environment.ProcessId;
                var targets = Scan(stopped, self, null);
                var marked = ownerGone ? null : targets.ToHashSet();
                if (targets.Count > 0)
                {
                    Say($"dtask watchdog: {why}; stopping process groups [{string.Join(' ', stopped)}] and {targets.Count} process(es) of its children (SIGTERM, SIGKILL after {grace.TotalSeconds:0.###} s)");
                    targets = Stop(stopped, self, marked);
                    if (targets.Count > 0)
                    {
                        Say($"dtask watchdog: {targets.Count} process(es) still alive after SIGKILL: {string.Join(' ', targets)}");
                    }
                }

                lock (gate)
                {
                    groups.ExceptWith(stopped);
                }
            }
        }

        private List<int> Stop(HashSet<int> stopped, int self, HashSet<int>? marked)
        {
            // SIGTERM reaches each process once (a second one would run a child's TERM trap again): the groups as a whole,
            // then the marked processes outside them, then whatever appears outside the groups while waiting.
            var grouped = new HashSet<int>();
            var targets = Scan(stopped, self, marked, grouped);
            Signal(stopped, [.. targets.Where(pid => !grouped.Contains(pid))], PosixProcessGroups.SigTerm);
            var termed = new HashSet<int>(targets);
            var started = Stopwatch.GetTimestamp();
            while (Stopwatch.GetElapsedTime(started) < grace)
            {
                Thread.Sleep(Poll); // A process of its own, waiting for others to exit: no clock to inject.
                var inGroups = new HashSet<int>();
                targets = Scan(stopped, self, marked, inGroups);
                if (targets.Count == 0)
                {
                    return targets;
                }

                // Only those forked meanwhile outside the stopped groups (they left them): a fork inside a group is the
                // child's own TERM handling at work (its trap's commands), and the SIGKILL after the grace reaches it.
                Signal([], [.. targets.Where(pid => !inGroups.Contains(pid) && termed.Add(pid))], PosixProcessGroups.SigTerm);
            }

            started = Stopwatch.GetTimestamp();
            do
            {
                Signal(stopped, targets, PosixProcessGroups.SigKill);
                Thread.Sleep(TimeSpan.FromMilliseconds(20));
                targets = Scan(stopped, self, marked);
            }
            while (targets.Count > 0 && Stopwatch.GetElapsedTime(started) < ChildWatchdog.KillWait);

            return targets;
        }

        private static void Signal(HashSet<int> stopped, List<int> targets, int signal)
        {
            foreach (var group in stopped)
            {
                try
                {
                    PosixProcessGroups.SignalGroup(group, signal);
                }
                catch (InvalidOperationException)
                {
                    // Not ours to signal any more (EPERM): the members found are signalled one by one.
                }
            }

            foreach (var pid in targets)
            {
                PosixProcessGroups.SignalProcess(pid, signal);
            }
        }

        /// <summary>
        /// The live processes (not zombies) in one of <paramref name="stopped"/>, or marked: carrying the marker when
        /// <paramref name="marked"/> is null, else among <paramref name="marked"/>.
        /// </summary>
        private List<int> Scan(HashSet<int> stopped, int self, HashSet<int>? marked, HashSet<int>? grouped = null)
        {
            var found = new List<int>();
            foreach (var directory in Directory.EnumerateDirectories("/proc"))
            {
                if (!int.TryParse(Path.GetFileName(directory.AsSpan()), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || pid == self)
                {
                    continue;
                }

                try
                {
                    var stat = File.ReadAllText(directory + "/stat");
                    var close = stat.LastIndexOf(')');
                    var fields = close < 0 ? [] : stat[(close + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
                    if (fields.Length < 3 || fields[0] is "Z" or "X")
                    {
                        continue;
                    }

                    if (int.TryParse(fields[2], NumberStyles.None, CultureInfo.InvariantCulture, out var group) && stopped.Contains(group))
                    {
                        found.Add(pid);
                        grouped?.Add(pid);
                    }
                    else if (marked?.Contains(pid) ?? Carries(File.ReadAllBytes(directory + "/environ")))
                    {
                        found.Add(pid);
                    }
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    // Gone meanwhile, or another user's.
                }
            }

            return found;
        }

        private bool Carries(byte[] environ)
        {
            foreach (var entry in Encoding.UTF8.GetString(environ).Split('\0'))
            {
                if (entry.StartsWith(ChildWatchdog.MarkerVariable + "=", StringComparison.Ordinal))
                {
                    return entry[(ChildWatchdog.MarkerVariable.Length + 1)..].Split(':').Contains(marker, StringComparer.Ordinal);
                }
            }

            return false;
        }

        private void Say(string text)
        {
            try
            {
                error.WriteLine(text);
                error.Flush();
            }
            catch (IOException)
            {
                // Nobody reads the owner's stderr any more.
            }
        }
    }
}
