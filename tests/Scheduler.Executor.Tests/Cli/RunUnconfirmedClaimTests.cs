using System.Globalization;
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
}
