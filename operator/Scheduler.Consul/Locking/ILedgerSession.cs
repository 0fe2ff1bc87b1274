namespace Dtask.Consul.Locking;

/// <summary>
/// The session a claimant holds its locks with, as the task ledger sees it: its id (written into claims and checked by
/// their transactions), whether it is lost, and whether its renewal deadline has passed (whatever it held may already be
/// lost). <see cref="SessionRenewal"/> is the Consul one.
/// </summary>
public interface ILedgerSession
{
    /// <summary>The session id.</summary>
    string Id { get; }

    /// <summary>Cancelled when the session is lost.</summary>
    CancellationToken Lost { get; }

    /// <summary>Why the session was lost, or null while it lives.</summary>
    string? LostReason { get; }

    /// <summary>True once the renewal deadline has passed (or the session is lost): whatever it held may already be lost.</summary>
    bool IsPastDeadline { get; }
}
