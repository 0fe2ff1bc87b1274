using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;

namespace Dtask.Bench.Executors;

/// <summary>
/// What executors said about their work: the fire delay each logged when it started a child (<c>FireDelayMs</c>:
/// from the slot's fire time to the child's start, measured by the executor itself), and warnings and errors.
/// </summary>
internal sealed class ExecutorLog
{
    private const int ProblemsKept = 20;
    private readonly ConcurrentQueue<double> fireDelays = new();
    private readonly ConcurrentQueue<string> problems = new();
    private long warnings;

    /// <summary>Every fire delay logged so far, in milliseconds.</summary>
    public IReadOnlyList<double> FireDelaysMs => [.. fireDelays];

    /// <summary>Warnings and errors logged so far.</summary>
    public long Warnings => Interlocked.Read(ref warnings);

    /// <summary>The first warnings and errors, for the report.</summary>
    public IReadOnlyList<string> Problems => [.. problems];

    /// <summary>Forgets what was logged so far (after a warm-up).</summary>
    public void Clear()
    {
        fireDelays.Clear();
        Interlocked.Exchange(ref warnings, 0);
    }

    /// <summary>Records one fire delay.</summary>
    public void FireDelay(double milliseconds) => fireDelays.Enqueue(milliseconds);

    /// <summary>Records one warning or error.</summary>
    public void Problem(string node, string message)
    {
        Interlocked.Increment(ref warnings);
        if (problems.Count < ProblemsKept)
        {
            problems.Enqueue($"{node}: {message}");
        }
    }

    /// <summary>Reads one compact-JSON line of an executor's stdout.</summary>
    public void ReadJsonLine(string node, string line)
    {
        ArgumentNullException.ThrowIfNull(line);
        var delay = line.Contains("\"FireDelayMs\"", StringComparison.Ordinal);
        var level = line.Contains("\"@l\":\"Warning\"", StringComparison.Ordinal) || line.Contains("\"@l\":\"Error\"", StringComparison.Ordinal)
            || line.Contains("\"@l\":\"Fatal\"", StringComparison.Ordinal);
        if (!delay && !level)
        {
            return;
        }

        try
        {
            using var document = JsonDocument.Parse(line);
            var root = document.RootElement;
            if (delay && root.TryGetProperty("FireDelayMs", out var value) && value.ValueKind == JsonValueKind.Number)
            {
                FireDelay(value.GetDouble());
            }

            if (level)
            {
                var message = root.TryGetProperty("@m", out var m) ? m.GetString() : root.TryGetProperty("@mt", out var mt) ? mt.GetString() : line;
                Problem(node, message ?? line);
            }
        }
        catch (JsonException)
        {
            Problem(node, string.Create(CultureInfo.InvariantCulture, $"unreadable log line: {line}"));
        }
    }
}
