namespace Dtask.Chaos.Hosts;

/// <summary>The host of one executor: its network namespace, its gateway to Consul (its agent), and its clock when it is on a wrong one.</summary>
/// <param name="Network">Its network namespace and veth pair.</param>
/// <param name="Gateway">The proxy it talks to Consul through.</param>
/// <param name="Clock">Its libfaketime clock; null when it runs on the true clock throughout.</param>
public sealed record NodeHost(NodeNetwork Network, NodeGateway Gateway, NodeClock? Clock) : IDisposable
{
    /// <summary>Stops the gateway and removes the namespace.</summary>
    public void Dispose()
    {
        Gateway.DisposeAsync().AsTask().GetAwaiter().GetResult();
        Network.Dispose();
    }
}
