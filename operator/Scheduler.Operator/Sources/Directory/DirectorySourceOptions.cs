using Dtask.Core.State;

namespace Dtask.Operator.Sources.Directory;

/// <summary>How the directory source runs: which directory, how often it resyncs, and the lock its replicas share.</summary>
/// <param name="Path">The manifest directory (read recursively, <c>*.yaml</c> and <c>*.yml</c>); made absolute.</param>
public sealed record DirectorySourceOptions(string Path)
{
    /// <summary>Signs every task spec written (executors with <c>--trusted-keys</c> run only verified specs); none: unsigned.</summary>
    public Dtask.Core.Manifests.SpecSigner? Signer { get; init; }

    /// <summary>The full path of <see cref="Path"/>: the owner of its tasks is <c>dir:&lt;full path&gt;</c>.</summary>
    public string FullPath { get; } = System.IO.Path.TrimEndingDirectorySeparator(System.IO.Path.GetFullPath(Path));

    /// <summary>A full reconcile runs at least this often, whatever the file watcher saw.</summary>
    public TimeSpan Resync { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>How long the files must be quiet after a change before a reconcile runs.</summary>
    public TimeSpan Debounce { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>The leader lock key; <see cref="DefaultLockKey"/> under the prefix when null.</summary>
    public string? LockKey { get; init; }

    /// <summary>The TTL of the lock's session.</summary>
    public TimeSpan SessionTtl { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>The Consul catalog node the lock's session is created on (<c>--session-node</c>); the answering agent's node when null.</summary>
    public string? SessionNode { get; init; }

    /// <summary>The lock-delay of the lock's session: how long a lost lock stays untakeable.</summary>
    public TimeSpan LockDelay { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>How long to wait before trying to take the lock again after Consul failed, or after losing it (so a replica already waiting takes over).</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Whether status changes of the tasks are watched and logged while leading.</summary>
    public bool LogStatus { get; init; } = true;

    /// <summary>The lock key under <paramref name="layout"/>'s prefix: <c>&lt;prefix&gt;leader/operator/dir</c>.</summary>
    public static string DefaultLockKey(KvLayout layout)
    {
        ArgumentNullException.ThrowIfNull(layout);
        return layout.Prefix + "leader/operator/dir";
    }

    /// <summary>Problems of these options, for a refusal at start; empty when usable.</summary>
    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        if (Resync <= TimeSpan.Zero)
        {
            problems.Add("--resync must be a positive duration");
        }

        if (Debounce < TimeSpan.Zero)
        {
            problems.Add("the debounce must not be negative");
        }

        if (SessionTtl < TimeSpan.FromSeconds(10))
        {
            problems.Add("the lock session TTL must be at least 10 s");
        }

        return problems;
    }
}
