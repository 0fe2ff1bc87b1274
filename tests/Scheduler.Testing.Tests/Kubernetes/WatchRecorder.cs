using System.Text.Json;
using System.Threading.Channels;
using k8s;

namespace Dtask.Testing.Tests.Kubernetes;

/// <summary>What a watch delivered: its events, errors and close, in arrival order, for tests to await one by one.</summary>
internal sealed class WatchRecorder
{
    private readonly Channel<WatchNotice> notices = Channel.CreateUnbounded<WatchNotice>();

    public void OnEvent(WatchEventType type, object item) =>
        notices.Writer.TryWrite(new WatchNotice(type, (JsonElement)item, null, false));

    public void OnError(Exception error) => notices.Writer.TryWrite(new WatchNotice(null, default, error, false));

    public void OnClosed() => notices.Writer.TryWrite(new WatchNotice(null, default, null, true));

    /// <summary>The next notice, or a failure after five seconds.</summary>
    public async Task<WatchNotice> NextAsync() =>
        await notices.Reader.ReadAsync(TestContext.Current.CancellationToken).AsTask().WaitAsync(TimeSpan.FromSeconds(5), TestContext.Current.CancellationToken);

    /// <summary>True when nothing more arrives within <paramref name="quiet"/>.</summary>
    public async Task<bool> StaysQuietAsync(TimeSpan quiet)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(quiet);
        try
        {
            await notices.Reader.WaitToReadAsync(timeout.Token);
            return false;
        }
        catch (OperationCanceledException)
        {
            return true;
        }
    }
}

/// <summary>One thing a watch delivered: an event (type and object), an error, or the close.</summary>
internal sealed record WatchNotice(WatchEventType? Type, JsonElement Object, Exception? Error, bool Closed)
{
    public string Name => Object.GetProperty("metadata").GetProperty("name").GetString()!;

    public string ResourceVersion => Object.GetProperty("metadata").GetProperty("resourceVersion").GetString()!;

    public override string ToString() => Closed ? "closed" : Error is not null ? $"error {Error}" : $"{Type} {Object}";
}
