using System.Diagnostics.CodeAnalysis;

namespace Dtask.Consul.Locking;

/// <summary>
/// A one-way "this is lost" signal: a token that is cancelled once, and the reason it was. The first reason wins;
/// later ones are ignored. Safe to fire from any thread, including timer callbacks and token registrations, and
/// after <see cref="Close"/> (it is then ignored, so an owner shutting down on purpose does not report a loss).
/// </summary>
[SuppressMessage("Design", "CA1001:Types that own disposable fields should be disposable",
    Justification = "The source has no timer to release, and holders may still register on Token after its owner is gone.")]
public sealed class LostSignal
{
    private readonly CancellationTokenSource source = new();
    private readonly Lock gate = new();
    private string? reason;
    private bool closed;

    /// <summary>Creates a signal that has not fired.</summary>
    public LostSignal() => Token = source.Token;

    /// <summary>Cancelled when the signal fires.</summary>
    public CancellationToken Token { get; }

    /// <summary>True once the signal fired.</summary>
    public bool IsLost => Token.IsCancellationRequested;

    /// <summary>Why it fired, or null while it has not.</summary>
    public string? Reason
    {
        get
        {
            lock (gate)
            {
                return reason;
            }
        }
    }

    /// <summary>Fires the signal with <paramref name="why"/>, unless it already fired or was closed.</summary>
    /// <returns>True when this call fired it.</returns>
    public bool Lose(string why)
    {
        ArgumentException.ThrowIfNullOrEmpty(why);
        lock (gate)
        {
            if (closed || reason is not null)
            {
                return false;
            }

            reason = why;
        }

        // Outside the lock: the token's callbacks may fire other signals.
        source.Cancel();
        return true;
    }

    /// <summary>Stops the signal from firing from now on; a loss it already reported stands.</summary>
    public void Close()
    {
        lock (gate)
        {
            closed = true;
        }
    }
}
