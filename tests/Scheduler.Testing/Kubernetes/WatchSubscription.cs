using System.Text.Json.Nodes;
using System.Threading.Channels;

namespace Dtask.Testing.Kubernetes;

/// <summary>One open watch: the resource and namespace it follows, and the event lines waiting to be streamed.</summary>
internal sealed class WatchSubscription(KubernetesResourceType type, string? @namespace, bool bookmarks)
{
    private readonly Channel<string> lines = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true });
    private volatile bool aborted;

    public KubernetesResourceType Type { get; } = type;

    /// <summary>The namespace watched; null for all of them.</summary>
    public string? Namespace { get; } = @namespace;

    /// <summary>True when the client asked for <c>BOOKMARK</c> events.</summary>
    public bool Bookmarks { get; } = bookmarks;

    /// <summary>The event lines, in order; completes when the watch ends.</summary>
    public ChannelReader<string> Lines => lines.Reader;

    /// <summary>True when the connection is to be cut rather than ended cleanly.</summary>
    public bool Aborted => aborted;

    public bool Follows(KubernetesResourceType type, string? @namespace) =>
        Type == type && (Namespace is null || Namespace == @namespace);

    public void Send(string eventType, JsonObject obj) =>
        lines.Writer.TryWrite(new JsonObject { ["type"] = eventType, ["object"] = obj.DeepClone() }.ToJsonString());

    /// <summary>Ends the stream cleanly after what was sent, as when the server's watch timeout expires.</summary>
    public void End() => lines.Writer.TryComplete();

    /// <summary>Cuts the connection without ending the response.</summary>
    public void Abort()
    {
        aborted = true;
        lines.Writer.TryComplete();
    }
}
