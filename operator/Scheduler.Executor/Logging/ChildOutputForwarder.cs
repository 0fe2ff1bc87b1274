using System.Buffers;
using System.Text;
using Serilog;
using Serilog.Events;

namespace Dtask.Executor.Logging;

/// <summary>Which of a child's output streams.</summary>
public enum ChildOutputSource
{
    /// <summary>Standard output: lines are logged at Information.</summary>
    Stdout,

    /// <summary>Standard error: lines are logged at Warning.</summary>
    Stderr,
}

/// <summary>
/// Forwards a child's stdout and stderr to the log, one event per line, with the run's fields (so
/// <c>journalctl DTASK_RUN_ID=...</c> shows the child's output), and keeps the last bytes of the combined
/// output in <see cref="Tail"/> for the run record.
/// </summary>
/// <remarks>
/// Call <see cref="ForwardAsync"/> once per stream, concurrently, and await both after the child exits. A line
/// longer than the limit is logged in pieces, each cut at a character boundary. A carriage return before the
/// newline is dropped; a last line without a newline is logged at end of stream.
/// </remarks>
public sealed class ChildOutputForwarder
{
    /// <summary>The longest line logged as one event, in bytes.</summary>
    public const int DefaultMaxLineBytes = 16 * 1024;

    private readonly ILogger logger;
    private readonly int maxLineBytes;

    /// <summary>Creates a forwarder for one run.</summary>
    /// <param name="logger">The executor's logger; the run's fields are added to it.</param>
    /// <param name="run">The run whose child this is.</param>
    /// <param name="tail">Where the last bytes are kept; a new 4 KiB tail when null.</param>
    /// <param name="maxLineBytes">The longest line logged as one event.</param>
    public ChildOutputForwarder(ILogger logger, RunContext run, OutputTail? tail = null, int maxLineBytes = DefaultMaxLineBytes)
    {
        ArgumentNullException.ThrowIfNull(logger);
        ArgumentNullException.ThrowIfNull(run);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLineBytes, 16);
        this.logger = logger.ForRun(run);
        this.maxLineBytes = maxLineBytes;
        Tail = tail ?? new OutputTail();
    }

    /// <summary>The last bytes of the child's combined output.</summary>
    public OutputTail Tail { get; }

    /// <summary>Reads the stream to its end, logging each line.</summary>
    /// <param name="stream">The child's stdout or stderr.</param>
    /// <param name="which">Which one it is.</param>
    /// <param name="cancellationToken">Stops reading.</param>
    /// <returns>A task that completes at end of stream.</returns>
    public async Task ForwardAsync(Stream stream, ChildOutputSource which, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var streamLogger = logger.ForContext(LogProperties.ChildStream, which == ChildOutputSource.Stdout ? "stdout" : "stderr");
        var level = which == ChildOutputSource.Stdout ? LogEventLevel.Information : LogEventLevel.Warning;
        var line = new ArrayBufferWriter<byte>(256);
        var buffer = ArrayPool<byte>.Shared.Rent(8192);
        try
        {
            int read;
            while ((read = await stream.ReadAsync(buffer.AsMemory(0, 8192), cancellationToken).ConfigureAwait(false)) > 0)
            {
                var chunk = buffer.AsSpan(0, read);
                while (!chunk.IsEmpty)
                {
                    var newline = chunk.IndexOf((byte)'\n');
                    var piece = newline < 0 ? chunk : chunk[..newline];
                    line.Write(piece);
                    while (line.WrittenCount > maxLineBytes)
                    {
                        EmitLongLinePiece(streamLogger, level, line);
                    }

                    if (newline >= 0)
                    {
                        EmitLine(streamLogger, level, line, lineEnded: true);
                        chunk = chunk[(newline + 1)..];
                    }
                    else
                    {
                        chunk = [];
                    }
                }
            }

            if (line.WrittenCount > 0)
            {
                EmitLine(streamLogger, level, line, lineEnded: false);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private void EmitLine(ILogger streamLogger, LogEventLevel level, ArrayBufferWriter<byte> line, bool lineEnded)
    {
        var bytes = line.WrittenSpan;
        Tail.Append(bytes);
        if (lineEnded)
        {
            Tail.Append("\n"u8);
        }

        if (!bytes.IsEmpty && bytes[^1] == (byte)'\r')
        {
            bytes = bytes[..^1];
        }

        streamLogger.Write(level, "{" + LogProperties.ChildOutput + ":l}", Encoding.UTF8.GetString(bytes));
        line.Clear();
    }

    private void EmitLongLinePiece(ILogger streamLogger, LogEventLevel level, ArrayBufferWriter<byte> line)
    {
        var bytes = line.WrittenSpan;
        var cut = maxLineBytes;
        while (cut > 0 && (bytes[cut] & 0xC0) == 0x80)
        {
            cut--;
        }

        if (cut == 0)
        {
            cut = maxLineBytes;
        }

        var piece = bytes[..cut];
        Tail.Append(piece);
        streamLogger.Write(level, "{" + LogProperties.ChildOutput + ":l}", Encoding.UTF8.GetString(piece));
        var rest = bytes[cut..].ToArray();
        line.Clear();
        line.Write(rest);
    }
}
