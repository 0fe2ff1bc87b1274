using Dtask.Consul.Locking;

namespace Dtask.Executor.Claims;

/// <summary>
/// How an executor's session is created and kept (see <see cref="SessionRenewal"/>): one TTL-only session shared by
/// all of the executor's task locks, Behavior <c>release</c> (the run record stays for the next claimer to judge), and a
/// lock-delay of 1 s: small, so a dead node's task is taken over quickly; not zero, so a holder that merely missed a
/// renewal has a moment to notice before another starts.
/// </summary>
public sealed record ExecutorSessionOptions : SessionRenewalOptions
{
    /// <summary>The executor's defaults: named <c>dtask executor</c>, TTL 15 s, lock-delay 1 s, Behavior <c>release</c>.</summary>
    public ExecutorSessionOptions()
    {
        Name = "dtask executor";
        LockDelay = TimeSpan.FromSeconds(1);
    }
}
