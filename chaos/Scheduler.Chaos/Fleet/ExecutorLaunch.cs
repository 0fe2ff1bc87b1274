using System.Globalization;

namespace Dtask.Chaos.Fleet;

/// <summary>How executors are started: the <c>dotnet</c> host, the <c>dtask.dll</c> it runs, and the timings of the run.</summary>
/// <param name="DotnetHost">The <c>dotnet</c> executable.</param>
/// <param name="DtaskDll">The built <c>dtask.dll</c>.</param>
/// <param name="Prefix">The KV prefix.</param>
/// <param name="SessionTtl">The executors' session TTL (10 s, Consul's minimum, so faults resolve within the run).</param>
/// <param name="ShutdownGrace">How long SIGTERM lets running children finish.</param>
/// <param name="TerminationGrace">Between SIGTERM and SIGKILL of a stopped child.</param>
public sealed record ExecutorLaunch(string DotnetHost, string DtaskDll, string Prefix, TimeSpan SessionTtl, TimeSpan ShutdownGrace, TimeSpan TerminationGrace)
{
    /// <summary>The command line of node <paramref name="node"/>.</summary>
    public IReadOnlyList<string> ArgumentsFor(string node) =>
    [
        "exec", DtaskDll, "executor",
        "--node", node,
        "--prefix", Prefix,
        "--session-ttl", Seconds(SessionTtl),
        "--shutdown-grace", Seconds(ShutdownGrace),
        "--termination-grace", Seconds(TerminationGrace),
    ];

    private static string Seconds(TimeSpan value) => ((int)Math.Ceiling(value.TotalSeconds)).ToString(CultureInfo.InvariantCulture) + "s";
}
