using Dtask.Consul.Locking;

namespace Dtask.Executor.Daemon;

/// <summary>Where a contender finds the session it claims with: <see cref="NodeMembership"/>'s claim session in the daemon.</summary>
public interface IClaimSessions
{
    /// <summary>The live claim session, or null while there is none (not joined yet, or lost and not renewed yet).</summary>
    ILedgerSession? ClaimSession { get; }
}
