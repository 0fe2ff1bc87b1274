namespace Dtask.Executor.Processes;

/// <summary>
/// "Stop the child now", with a reason: the lock was lost, a <c>Replace</c> request came, or the executor shuts down.
/// The first reason wins; later requests are ignored. Thread-safe.
/// </summary>
public sealed class StopRequest : IDisposable
{
    private readonly CancellationTokenSource source = new();
    private StopReason? reason;

    /// <summary>Cancelled once <see cref="Stop"/> was called.</summary>
    public CancellationToken Token => source.Token;

    /// <summary>The first reason given, or null while nobody asked.</summary>
    public StopReason? Reason => Volatile.Read(ref reason);

    /// <summary>True once a stop was asked for.</summary>
    public bool IsRequested => Reason is not null;

    /// <summary>Asks for the child to stop; returns false when a stop had been asked already.</summary>
    public bool Stop(StopReason why)
    {
        ArgumentNullException.ThrowIfNull(why);
        if (Interlocked.CompareExchange(ref reason, why, null) is not null)
        {
            return false;
        }

        try
        {
            source.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // Disposed concurrently: the run is over.
        }

        return true;
    }

    /// <summary>Stops with <paramref name="why"/> when <paramref name="token"/> is cancelled; dispose the result to stop listening.</summary>
    public CancellationTokenRegistration StopWhen(Func<StopReason> why, CancellationToken token)
    {
        ArgumentNullException.ThrowIfNull(why);
        return token.Register(() => Stop(why()));
    }

    /// <inheritdoc />
    public void Dispose() => source.Dispose();
}
