namespace Dtask.Bench.Executors;

/// <summary>One running executor, in its own process or in this one.</summary>
internal interface IRunningExecutor : IAsyncDisposable
{
    /// <summary>Its node name.</summary>
    string Node { get; }

    /// <summary>Its process id, or null for an executor inside this process.</summary>
    int? ProcessId { get; }
}
