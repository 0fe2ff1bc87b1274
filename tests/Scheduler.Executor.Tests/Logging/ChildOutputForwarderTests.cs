using System.Globalization;
using System.Text;
using Dtask.Executor.Logging;
using Dtask.Executor.Tests.Support;
using Serilog.Events;

namespace Dtask.Executor.Tests.Logging;

public class ChildOutputForwarderTests
{
    private static async Task<(CapturingSink Sink, ChildOutputForwarder Forwarder)> ForwardAsync(
        string stdout, string stderr, int maxLineBytes = ChildOutputForwarder.DefaultMaxLineBytes)
    {
        var sink = new CapturingSink();
        var forwarder = new ChildOutputForwarder(sink.CreateLogger(), Runs.Backup(), maxLineBytes: maxLineBytes);
        using var outStream = new MemoryStream(Encoding.UTF8.GetBytes(stdout));
        using var errStream = new MemoryStream(Encoding.UTF8.GetBytes(stderr));
        await forwarder.ForwardAsync(outStream, ChildOutputSource.Stdout, TestContext.Current.CancellationToken);
        await forwarder.ForwardAsync(errStream, ChildOutputSource.Stderr, TestContext.Current.CancellationToken);
        return (sink, forwarder);
    }

    private static string Message(LogEvent e) => e.RenderMessage(CultureInfo.InvariantCulture);

    [Fact]
    public async Task Each_line_is_one_event_with_the_run_fields_stderr_at_warning()
    {
        var (sink, _) = await ForwardAsync("one\r\ntwo\n\nlast without newline", "oops\n");

        Assert.Equal(["one", "two", "", "last without newline", "oops"], sink.Events.Select(Message));
        Assert.Equal(
            [LogEventLevel.Information, LogEventLevel.Information, LogEventLevel.Information, LogEventLevel.Information, LogEventLevel.Warning],
            sink.Events.Select(e => e.Level));
        Assert.All(sink.Events, e =>
        {
            Assert.Equal("\"backup\"", e.Properties[LogProperties.Task].ToString());
            Assert.Equal("\"ops\"", e.Properties[LogProperties.Namespace].ToString());
            Assert.Equal("1735732800", e.Properties[LogProperties.Slot].ToString());
            Assert.Equal("\"ops-backup-1735732800-1\"", e.Properties[LogProperties.RunId].ToString());
            Assert.Equal("\"node-a\"", e.Properties[LogProperties.Node].ToString());
        });
        Assert.Equal("\"stderr\"", sink.Events[^1].Properties[LogProperties.ChildStream].ToString());
    }

    [Fact]
    public async Task The_tail_keeps_the_combined_output()
    {
        var (_, forwarder) = await ForwardAsync("out\n", "err\n");

        Assert.Equal("out\nerr\n", forwarder.Tail.ToString());
    }

    [Fact]
    public async Task A_long_line_is_logged_in_pieces_cut_between_characters()
    {
        var line = string.Concat(Enumerable.Repeat("€", 30)); // 90 bytes
        var (sink, forwarder) = await ForwardAsync(line + "\nnext\n", "", maxLineBytes: 32);

        var pieces = sink.Events.Select(Message).ToList();
        Assert.Equal(line, string.Concat(pieces.Take(pieces.Count - 1)));
        Assert.Equal("next", pieces[^1]);
        Assert.All(pieces, p => Assert.DoesNotContain('\uFFFD', p));
        Assert.All(pieces, p => Assert.True(Encoding.UTF8.GetByteCount(p) <= 32));
        Assert.Equal(line + "\nnext\n", forwarder.Tail.ToString());
    }

    [Fact]
    public async Task Lines_split_across_reads_are_joined()
    {
        var sink = new CapturingSink();
        var forwarder = new ChildOutputForwarder(sink.CreateLogger(), Runs.Backup());
        using var stream = new TrickleStream(Encoding.UTF8.GetBytes("hello wörld\nsecond\n"), chunk: 3);

        await forwarder.ForwardAsync(stream, ChildOutputSource.Stdout, TestContext.Current.CancellationToken);

        Assert.Equal(["hello wörld", "second"], sink.Events.Select(Message));
    }

    /// <summary>Returns at most <c>chunk</c> bytes per read, like a pipe.</summary>
    private sealed class TrickleStream(byte[] data, int chunk) : MemoryStream(data)
    {
        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            base.ReadAsync(buffer, offset, Math.Min(count, chunk), cancellationToken);

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            base.ReadAsync(buffer[..Math.Min(buffer.Length, chunk)], cancellationToken);
    }
}
