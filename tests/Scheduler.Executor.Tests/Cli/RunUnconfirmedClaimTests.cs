using System.Globalization;
using Dtask.Core.State;
using Dtask.Executor.Claims;
using Dtask.Executor.Tests.Claims;
using Dtask.Executor.Tests.Support;
using Dtask.Testing;

namespace Dtask.Executor.Tests.Cli;

/// <summary>
/// <c>dtask run</c> whose claim transaction commits but whose answer is lost, with Consul unreachable for a while after:
/// the claim is read back and run (once), and a second <c>dtask run</c> of the same period never answers "already ran"
/// for a slot that did not run.
/// </summary>
public sealed class RunUnconfirmedClaimTests(ConsulFixture consul)
{
    private const long Period = 3600;

    [Fact]
    public async Task A_lost_claim_answer_followed_by_an_outage_runs_the_command_exactly_once_across_two_invocations_of_the_period()
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        if (Period - (now % Period) < 90)
        {
            await Task.Delay(TimeSpan.FromSeconds(Period - (now % Period) + 1), TestContext.Current.CancellationToken); // Not at a period's end.
        }

        var prefix = TestKvPrefix.New("dtask-test/");
        var task = "ops/lost-" + Guid.NewGuid().ToString("N")[..8];
        var witness = Path.Combine(Path.GetTempPath(), "dtask-lost-" + Guid.NewGuid().ToString("N"));
        await using var proxy = new ConsulProxy(consul.Agent.Address);
        long outageEnds = 0;
        // The first claim transaction (the one with a lock) reaches the agent and its answer is lost; then the agent
        // cannot be reached for 4 s.
        proxy.Decide = (_, path, body) =>
        {
            var ends = Interlocked.Read(ref outageEnds);
            if (ends == 0 && path == "/v1/txn" && body.Contains("\"lock\"", StringComparison.Ordinal))
            {
                Interlocked.Exchange(ref outageEnds, Environment.TickCount64 + 4000);
                return ProxyFault.DropAnswer;
            }

            return ends != 0 && Environment.TickCount64 < ends ? ProxyFault.Refuse : ProxyFault.Forward;
        };
        string[] Run(string node, Uri address) =>
        [
            "run", "--task", task, "--period", Period.ToString(CultureInfo.InvariantCulture), "--node", node, "--prefix", prefix, "--consul", address.ToString(),
            "--", "sh", "-c", $"echo \"$DTASK_SLOT $DTASK_NODE\" >> {witness}",
        ];

        try
        {
            var first = await DtaskProcess.RunAsync(Run("first", proxy.Address));
            var second = await DtaskProcess.RunAsync(Run("second", consul.Agent.Address));
            TestContext.Current.TestOutputHelper?.WriteLine($"first: exit {first.ExitCode}\n{first.Error}\nsecond: exit {second.ExitCode}\n{second.Error}");

            Assert.True(proxy.Dropped >= 2, $"the fault was not injected ({proxy.Dropped} requests dropped)");
            var lines = File.Exists(witness) ? File.ReadAllLines(witness) : [];
            var ran = Assert.Single(lines); // Exactly once overall.
            Assert.EndsWith(" first", ran, StringComparison.Ordinal);
            Assert.Equal(0, first.ExitCode);
            Assert.Contains("reading it back", first.Error, StringComparison.Ordinal);
            Assert.Equal(0, second.ExitCode);
            Assert.Contains("already ran on node first", second.Error, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(witness);
        }
    }

    [Fact]
    public async Task A_claim_of_the_period_whose_session_ended_without_an_outcome_is_neither_run_again_nor_called_already_ran()
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        if (Period - (now % Period) < 90)
        {
            await Task.Delay(TimeSpan.FromSeconds(Period - (now % Period) + 1), TestContext.Current.CancellationToken); // Not at a period's end.
        }

        await using var world = new ClaimWorld(consul);
        var slot = DateTimeOffset.UtcNow.ToUnixTimeSeconds() / Period * Period;
        var witness = Path.Combine(Path.GetTempPath(), "dtask-gone-" + Guid.NewGuid().ToString("N"));
        string[] Run(string node) =>
        [
            "run", "--task", world.Task.ToString(), "--period", Period.ToString(CultureInfo.InvariantCulture), "--node", node, "--prefix", world.Layout.Prefix,
            "--consul", consul.Agent.Address.ToString(), "--", "sh", "-c", $"echo \"$DTASK_SLOT $DTASK_NODE\" >> {witness}",
        ];

        try
        {
            // An earlier call claimed this period's slot, then its session ended before it recorded anything (it died, or
            // gave up with Consul unreachable): whether its command ran is unknown.
            var session = await world.SessionAsync();
            var claimed = await new SlotClaimer(world.Store).ClaimAsync(world.Task, slot, "earlier", session.Id, cancellationToken: TestContext.Current.CancellationToken);
            Assert.Equal(ClaimStatus.Claimed, claimed.Status);
            await world.Client.Sessions.DestroyAsync(session.Id, TestContext.Current.CancellationToken);

            var retry = await DtaskProcess.RunAsync(Run("retry"));

            Assert.Equal(75, retry.ExitCode);
            Assert.Contains("whose session ended before it recorded an outcome", retry.Error, StringComparison.Ordinal);
            Assert.DoesNotContain("already ran", retry.Error, StringComparison.Ordinal);
            Assert.False(File.Exists(witness)); // At most one run per slot: not run again.

            // Released by its claimant as not run (claim-unconfirmed): still not "already ran".
            var record = (await world.Store.ReadRunAsync(world.Task, TestContext.Current.CancellationToken)).Record!;
            await world.Client.Kv.PutAsync(world.Layout.RunKey(world.Task.Namespace, world.Task.Name),
                RunStateStore.Encode(record with { State = RunState.Missed, Reason = SlotClaimer.ClaimUnconfirmedReason }), cancellationToken: TestContext.Current.CancellationToken);
            var after = await DtaskProcess.RunAsync(Run("after"));
            Assert.Equal(75, after.ExitCode);
            Assert.Contains($"did not run: recorded missed ({SlotClaimer.ClaimUnconfirmedReason})", after.Error, StringComparison.Ordinal);
            Assert.False(File.Exists(witness));
        }
        finally
        {
            File.Delete(witness);
        }
    }
}
