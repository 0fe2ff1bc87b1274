using Microsoft.Extensions.Logging;

namespace Dtask.Operator.Tests.Support;

/// <summary>Log lines of the code under test, written to the running test's output (shown when it fails).</summary>
internal sealed class TestOutputLog(ITestOutputHelper? output) : ILoggerProvider, ILogger
{
    public static ILoggerFactory Factory() =>
        LoggerFactory.Create(b => b.AddProvider(new TestOutputLog(TestContext.Current.TestOutputHelper)).SetMinimumLevel(LogLevel.Debug));

    public ILogger CreateLogger(string categoryName) => this;

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => output is not null;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
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
