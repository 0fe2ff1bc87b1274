using Dtask.Testing;
using System.Globalization;
using System.Runtime.InteropServices;
using Dtask.Chaos;

// dtask chaos: a three-server Consul cluster, five executors, tasks at 1-2 s periods and a fault schedule; then an
// invariant checker. Exit 0 when every invariant holds, 1 when one is violated, 2 on a bad command line, 3 when the
// run itself failed.
const string Usage = """
    usage: Dtask.Chaos [--duration SECONDS] [--seed N] [--out FILE] [--markdown FILE] [--dtask DTASK.DLL] [--executors N] [--keep] [--defect NAME] [--only KIND,...]
      --duration   the fault phase in seconds (default 600; from 120 the full fault plan, below it the short one)
      --seed       the seed of the fault plan (default: CHAOS_SEED, else a random one, printed so the run can be replayed)
      --out        where to write the JSON report (default docs/benchmarks/chaos.json in the repository)
      --markdown   the Markdown file whose chaos section is rewritten, with the timeline PNG beside the JSON report
                   (default docs/BENCHMARKS.md in the repository; "none" for no publication)
      --dtask      the built dtask.dll the executors run (default: operator/Scheduler.Cli/bin/<configuration>/<framework>/)
      --executors  executor processes (default 5)
      --keep       keep the work folder (witness logs, executor logs) even when the run passes
      --only       from 120 s: keep only these fault kinds of the full plan (e.g. TreePause,ConsulPartition)
      --defect     the --dtask build puts back the known defect NAME (make chaos-defect): exit 0 only when the checker
                   catches it (a violation), 1 when every invariant held; --markdown gets the defect section
    """;

var duration = ChaosOptions.DefaultDuration;
string? report = null;
string? dtask = null;
var executors = 5;
var keep = false;
string? defect = null;
HashSet<Dtask.Chaos.Faults.FaultKind>? only = null;
string? markdown = null;
int? seed = null;
for (var i = 0; i < args.Length; i++)
{
    string Next() => i + 1 < args.Length ? args[++i] : throw new FormatException($"{args[i]} needs a value");
    try
    {
        switch (args[i])
        {
            case "--duration":
                duration = TimeSpan.FromSeconds(int.Parse(Next().TrimEnd('s'), NumberStyles.None, CultureInfo.InvariantCulture));
                break;
            case "--seed":
                seed = int.Parse(Next(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
                break;
            case "--markdown":
                markdown = Next();
                break;
            case "--out":
                report = Next();
                break;
            case "--dtask":
                dtask = Next();
                break;
            case "--executors":
                executors = int.Parse(Next(), NumberStyles.None, CultureInfo.InvariantCulture);
                break;
            case "--keep":
                keep = true;
                break;
            case "--defect":
                defect = Next();
                break;
            case "--only":
                only = [.. Next().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(k =>
                    Enum.TryParse<Dtask.Chaos.Faults.FaultKind>(k, ignoreCase: false, out var kind) && Enum.IsDefined(kind)
                        ? kind
                        : throw new FormatException($"--only: '{k}' is not a fault kind ({string.Join(", ", Enum.GetNames<Dtask.Chaos.Faults.FaultKind>())})"))];
                break;
            case "-h" or "--help":
                Console.WriteLine(Usage);
                return 0;
            default:
                throw new FormatException($"unknown argument {args[i]}");
        }
    }
    catch (Exception e) when (e is FormatException or OverflowException)
    {
        Console.Error.WriteLine(e.Message);
        Console.Error.WriteLine(Usage);
        return 2;
    }
}

if (duration < TimeSpan.FromSeconds(60) || executors < 2)
{
    Console.Error.WriteLine("--duration must be at least 60 and --executors at least 2");
    return 2;
}

using var cancel = new CancellationTokenSource();
void Interrupt(PosixSignalContext context)
{
    context.Cancel = true;
    Console.Error.WriteLine($"{context.Signal}: stopping the chaos run and everything it started");
    cancel.Cancel();
}

using var onInt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Interrupt);
using var onTerm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Interrupt);
using var onHangup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, Interrupt);
if (seed is null && Environment.GetEnvironmentVariable("CHAOS_SEED") is { Length: > 0 } fromEnvironment)
{
    if (!int.TryParse(fromEnvironment, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var parsed))
    {
        Console.Error.WriteLine($"CHAOS_SEED must be an integer, not '{fromEnvironment}'");
        return 2;
    }

    seed = parsed;
}

var root = RepositoryRoot.Find(AppContext.BaseDirectory);
try
{
    var options = new ChaosOptions
    {
        Duration = duration,
        Executors = executors,
        DtaskDll = dtask ?? DtaskBuild.Dll(),
        DotnetHost = DtaskBuild.DotnetHost(),
        ReportPath = report ?? (root is not null ? Path.Combine(root, "docs", "benchmarks", "chaos.json") : null),
        BenchmarksPath = markdown == "none" ? null : markdown ?? (root is not null ? Path.Combine(root, "docs", "BENCHMARKS.md") : null),
        Seed = seed ?? Random.Shared.Next(1, 1_000_000),
        KeepWorkFolder = keep,
        Defect = defect,
        OnlyFaults = only,
    };
    var result = await new ChaosRunner(options, Console.Out, TimeProvider.System).RunAsync(cancel.Token);
    if (defect is not null)
    {
        Console.WriteLine(result.Passed
            ? $"the defect {defect} went unseen: every invariant held"
            : $"the defect {defect} was caught: {string.Join(", ", result.Report.InvariantViolations.Where(i => i.Value > 0).Select(i => $"{i.Key} {i.Value}"))}");
        return result.Passed ? 1 : 0;
    }

    return result.Passed ? 0 : 1;
}
catch (OperationCanceledException) when (cancel.IsCancellationRequested)
{
    Console.Error.WriteLine("chaos run interrupted; everything it started was stopped");
    return 3;
}
catch (Exception e) when (e is IOException or InvalidOperationException or TimeoutException or System.ComponentModel.Win32Exception or Dtask.Consul.Errors.ConsulException)
{
    Console.Error.WriteLine($"chaos run failed: {e}");
    return 3;
}
