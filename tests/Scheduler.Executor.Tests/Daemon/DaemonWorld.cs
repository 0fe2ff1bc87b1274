using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Dtask.Consul;
using Dtask.Consul.Kv;
using Dtask.Core.Manifests;
using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Executor.Claims;
using Dtask.Executor.Tests.Support;
using Dtask.Testing;

namespace Dtask.Executor.Tests.Daemon;

/// <summary>One daemon test's world: its own KV prefix on an agent, its executors, a scratch folder, and readers of the records.</summary>
public sealed partial class DaemonWorld : IAsyncDisposable
{
    private readonly List<ExecutorProcess> executors = [];

    public DaemonWorld(Uri consul, ConsulClient client)
    {
        Consul = consul;
        Client = client;
        Prefix = TestKvPrefix.New("dtask-test/");
        Layout = new KvLayout(Prefix);
        Store = new RunStateStore(client, Layout);
        Folder = Directory.CreateTempSubdirectory("dtask-daemon-").FullName;
    }

    public Uri Consul { get; set; }

    public ConsulClient Client { get; }

    public string Prefix { get; }

    public KvLayout Layout { get; }

    public RunStateStore Store { get; }

    public string Folder { get; }

    public IReadOnlyList<ExecutorProcess> Executors => executors;

    public ExecutorProcess Start(string node, IReadOnlyDictionary<string, string>? environment = null, params string[] extra)
    {
        var executor = ExecutorProcess.Start(Consul, Prefix, node, environment, extra);
        executors.Add(executor);
        return executor;
    }

    public async Task<IReadOnlyList<ExecutorProcess>> StartFleetAsync(int count, params string[] extra)
    {
        var fleet = Enumerable.Range(0, count).Select(i => Start($"node-{i}", null, extra)).ToList();
        foreach (var executor in fleet)
        {
            await executor.ReadyAsync();
        }

        return fleet;
    }

    public async Task<TaskId> PutTaskAsync(string name, ScheduledTaskSpec spec)
    {
        var task = new ScheduledTask { Metadata = new ObjectMeta { Name = name, Namespace = "ops" }, Spec = spec };
        var json = KvTaskSpec.From(task, TaskOwner.Cli).ToJson();
        await Client.Kv.PutStringAsync(Layout.TaskKey("ops", name), json, cancellationToken: TestContext.Current.CancellationToken);
        return new TaskId("ops", name);
    }

    public async Task PutRawAsync(string key, string value) =>
        await Client.Kv.PutStringAsync(key, value, cancellationToken: TestContext.Current.CancellationToken);

    public Task<IReadOnlyList<RunRecord>> HistoryAsync(TaskId task) => Store.ReadHistoryAsync(task, TestContext.Current.CancellationToken);

    public async Task<RunRecord?> RunRecordAsync(TaskId task) => (await Store.ReadRunAsync(task, TestContext.Current.CancellationToken)).Record;

    public string PathOf(string name) => Path.Combine(Folder, name);

    /// <summary>
    /// Waits until every executor given has logged that it scheduled the task (its loop runs: every slot after this
    /// line is due on that executor); fails the test otherwise.
    /// </summary>
    public static async Task ScheduledOnAllAsync(IEnumerable<ExecutorProcess> fleet, string task, TimeSpan? within = null)
    {
        foreach (var executor in fleet)
        {
            Assert.True(await executor.WaitForAsync($"task ops/{task}: scheduled", within ?? TimeSpan.FromSeconds(30)),
                $"executor {executor.Node} never scheduled ops/{task}:\n{executor.Output}");
        }
    }

    /// <summary>
    /// Waits until every executor of <paramref name="fleet"/> is past start-up: watching, and, when it waited for its peers'
    /// clocks to be timed, done waiting.
    /// </summary>
    public static async Task ClaimingOnAllAsync(IEnumerable<ExecutorProcess> fleet, TimeSpan? within = null)
    {
        foreach (var executor in fleet)
        {
            Assert.True(await executor.WaitForAsync("INF watching ", within ?? TimeSpan.FromSeconds(30)), $"executor {executor.Node} never started watching:\n{executor.Output}");
            if (executor.Lines.Any(l => l.Contains("not claiming until their clocks are timed", StringComparison.Ordinal)))
            {
                Assert.True(await executor.WaitForAsync("clocks timed; claiming", within ?? TimeSpan.FromSeconds(40)),
                    $"executor {executor.Node} never had its peers' clocks timed:\n{executor.Output}");
            }
        }
    }

    /// <summary>
    /// The witness lines a task's children appended to <paramref name="name"/> as "slot node [more…]", by slot; a line
    /// cut short by a reader racing the writer is left out until it is complete.
    /// </summary>
    public IReadOnlyList<Witness> Witnesses(string name) =>
        [.. ReadLines(name).Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(f => f.Length >= 2 && long.TryParse(f[0], CultureInfo.InvariantCulture, out _))
            .Select(f => new Witness(long.Parse(f[0], CultureInfo.InvariantCulture), f[1], f.Length > 2 ? f[2] : null))
            .OrderBy(w => w.Slot)];

    /// <summary>
    /// Waits until a child has witnessed a slot after <paramref name="slot"/>: a run of a later slot proves the record
    /// moved past it, so nothing can run <paramref name="slot"/> or any earlier one any more.
    /// </summary>
    public async Task<bool> WitnessedAfterAsync(string name, long slot, TimeSpan within) =>
        await Eventually.TrueAsync(() => Witnesses(name).Any(w => w.Slot > slot), within);

    public string[] ReadLines(string name) => File.Exists(PathOf(name)) ? File.ReadAllLines(PathOf(name)) : [];

    public static bool IsAlive(int pid) => Directory.Exists($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}") && !IsZombie(pid);

    private static bool IsZombie(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat");
            return stat[(stat.LastIndexOf(')') + 2)..].StartsWith('Z');
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>The value of <c>DTASK_INSTANCE</c> in a live process's environment (the executor's watchdog marker), or null.</summary>
    public static string? MarkerOf(int pid)
    {
        try
        {
            var entries = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/environ").Split('\0');
            return entries.FirstOrDefault(e => e.StartsWith("DTASK_INSTANCE=", StringComparison.Ordinal))?["DTASK_INSTANCE=".Length..];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>The live processes (no zombies) in process group <paramref name="pgid"/> or whose environment carries <paramref name="marker"/>.</summary>
    public static IReadOnlyList<int> Contained(int pgid, string marker)
    {
        var found = new List<int>();
        foreach (var directory in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(directory), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            {
                continue;
            }

            try
            {
                var stat = File.ReadAllText(Path.Combine(directory, "stat"));
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                if (fields[0] is "Z" or "X")
                {
                    continue;
                }

                if (fields[2] == pgid.ToString(CultureInfo.InvariantCulture) || (MarkerOf(pid)?.Split(':').Contains(marker) ?? false))
                {
                    found.Add(pid);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Gone meanwhile.
            }
        }

        return found;
    }

    /// <summary>The pids written into a file by children (one per line).</summary>
    public IReadOnlyList<int> Pids(string name) => [.. ReadLines(name).Select(l => int.Parse(l.Trim(), CultureInfo.InvariantCulture))];

    /// <summary>Sum of the "consul requests: firing N requests W writes for R runs" lines of the stopped executors.</summary>
    public (long Writes, long Runs) FiringWrites()
    {
        long writes = 0, runs = 0;
        foreach (var line in executors.SelectMany(e => e.Lines))
        {
            if (CountLine().Match(line) is { Success: true } m)
            {
                writes += long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
                runs += long.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture);
            }
        }

        return (writes, runs);
    }

    /// <summary>Every "fire delay N ms" of every executor.</summary>
    public IReadOnlyList<double> FireDelays() =>
        [.. executors.SelectMany(e => e.Lines).Select(l => DelayLine().Match(l)).Where(m => m.Success).Select(m => double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture))];

    public async ValueTask DisposeAsync()
    {
        foreach (var executor in executors)
        {
            await executor.DisposeAsync();
        }

        // The executors' logs go to the test's output, which the runner prints when the test fails.
        if (TestContext.Current.TestOutputHelper is { } output)
        {
            foreach (var executor in executors)
            {
                output.WriteLine($"--- executor {executor.Node} ---");
                output.WriteLine(executor.Output);
            }
        }

        foreach (var file in Directory.EnumerateFiles(Folder).Where(f => f.EndsWith(".pid", StringComparison.Ordinal)))
        {
            foreach (var line in File.ReadAllLines(file))
            {
                if (int.TryParse(line.Trim(), CultureInfo.InvariantCulture, out var pid) && IsAlive(pid))
                {
                    ExecutorProcess.Kill("KILL", pid);
                }
            }
        }

        try
        {
            Directory.Delete(Folder, recursive: true);
            await Client.Kv.DeleteAsync(Prefix, new KvDeleteOptions { Recurse = true });
        }
        catch (Exception e) when (e is IOException or Dtask.Consul.Errors.ConsulException)
        {
            // Best effort.
        }
    }

    public static string Utf8(ReadOnlyMemory<byte> value) => Encoding.UTF8.GetString(value.Span);

    [GeneratedRegex(@"consul requests: firing \d+ requests (\d+) writes for (\d+) runs")]
    private static partial Regex CountLine();

    [GeneratedRegex(@"fire delay ([\d.]+) ms")]
    private static partial Regex DelayLine();
}

/// <summary>One line a child wrote: the slot it ran, the node it ran on, and an optional third field (e.g. its start time).</summary>
public sealed record Witness(long Slot, string Node, string? Extra);
