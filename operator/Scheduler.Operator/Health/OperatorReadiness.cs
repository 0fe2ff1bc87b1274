namespace Dtask.Operator.Health;

/// <summary>
/// Whether the operator is ready, for <c>/readyz</c>: Consul has answered once, and the source is initialised —
/// its first list (Kubernetes) or reconcile (directory) is done while leading, or it waits as a non-leader.
/// </summary>
public sealed class OperatorReadiness
{
    private int consul;
    private int source;

    /// <summary>True once Consul has answered.</summary>
    public bool ConsulReached => Volatile.Read(ref consul) == 1;

    /// <summary>True while the source is initialised (or waits as a non-leader).</summary>
    public bool SourceReady => Volatile.Read(ref source) == 1;

    /// <summary>Both.</summary>
    public bool IsReady => ConsulReached && SourceReady;

    /// <summary>What <c>/readyz</c> says: <c>ok</c>, or what is missing.</summary>
    public string Describe() => (ConsulReached, SourceReady) switch
    {
        (true, true) => "ok",
        (false, _) => "waiting for Consul",
        _ => "waiting for the first list or reconcile",
    };

    /// <summary>Records that Consul answered.</summary>
    public void MarkConsulReached() => Volatile.Write(ref consul, 1);

    /// <summary>Sets whether the source is initialised.</summary>
    public void SetSourceReady(bool ready) => Volatile.Write(ref source, ready ? 1 : 0);
}
