using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Dtask.Operator.Tests.Support;

/// <summary>Log lines of the code under test, written to the running test's output (shown when it fails).</summary>
/// <param name="output">The test's output.</param>
/// <param name="kept">Where every line is also kept, for a test that asserts on the log; none by default.</param>
internal sealed class TestOutputLog(ITestOutputHelper? output, ConcurrentQueue<string>? kept = null) : ILoggerProvider, ILogger
{
    public static ILoggerFactory Factory(ConcurrentQueue<string>? kept = null) =>
        LoggerFactory.Create(b => b.AddProvider(new TestOutputLog(TestContext.Current.TestOutputHelper, kept)).SetMinimumLevel(LogLevel.Debug));

    public ILogger CreateLogger(string categoryName) => this;

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => output is not null || kept is not null;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        kept?.Enqueue($"{logLevel}: {formatter(state, exception)} {exception}");
        try
        {
            output?.WriteLine($"{TimeProvider.System.GetUtcNow():HH:mm:ss.fff} {logLevel}: {formatter(state, exception)}");
        }
        catch (InvalidOperationException)
        {
            // The test has ended.
        }
    }

    public void Dispose()
    {
    }
}
