using Dtask.Consul.Errors;
using Dtask.Consul.Kv;
using Dtask.Consul.Sessions;
using Dtask.Consul.Tests.Fixtures;
using Dtask.Consul.Txn;
using Dtask.Testing;

namespace Dtask.Consul.Tests;

/// <summary>Transactions due at once share requests, and each keeps its own all-or-nothing answer.</summary>
public sealed class TxnBatcherTests(DevAgentFixture consul)
{
    private readonly string prefix = TestKvPrefix.New();
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private ConsulClient Client => consul.Client;

    [Fact]
    public async Task Forty_claims_at_once_all_commit_in_a_few_requests_each_with_its_own_results()
    {
        var session = (await Client.Sessions.CreateAsync(new SessionRequest("batcher", TimeSpan.FromSeconds(30)), Ct)).Value;
        await using var batcher = new TxnBatcher(Client.Txn);
        var claims = Enumerable.Range(0, 40).Select(i => batcher.ExecuteAsync(Claim(i, session, 0), Ct)).ToList();
        var results = await Task.WhenAll(claims);

        for (var i = 0; i < results.Length; i++)
        {
            Assert.True(results[i].Committed, $"claim {i}: {string.Join("; ", results[i].Errors)}");
            // Its own keys only: the lock and the run record it wrote.
            Assert.Equal([prefix + $"t{i}/lock", prefix + $"t{i}/run"], results[i].Results.Select(r => r.Key).Order(StringComparer.Ordinal));
            var stored = (await Client.Kv.GetAsync(prefix + $"t{i}/run", cancellationToken: Ct)).Value!;
            Assert.Equal(stored.ModifyIndex, results[i].Results.Single(r => r.Key == prefix + $"t{i}/run").ModifyIndex);
            Assert.Equal(session, (await Client.Kv.GetAsync(prefix + $"t{i}/lock", cancellationToken: Ct)).Value!.Session);
        }

        // 40 claims of 3 operations: at least 2 requests (64 operations at most each), far fewer than 40.
        Assert.InRange(batcher.Requests, 2, 20);
        await Client.Sessions.DestroyAsync(session, Ct);
    }

    [Fact]
    public async Task When_some_claims_of_a_request_fail_they_get_their_own_errors_and_the_others_commit()
    {
        var session = (await Client.Sessions.CreateAsync(new SessionRequest("batcher", TimeSpan.FromSeconds(30)), Ct)).Value;
        // Every third task's run record exists already: its claim (cas at index 0) must fail, alone.
        for (var i = 0; i < 30; i += 3)
        {
            await Client.Kv.PutStringAsync(prefix + $"t{i}/run", "taken", cancellationToken: Ct);
        }

        await using var batcher = new TxnBatcher(Client.Txn);
        var results = await Task.WhenAll(Enumerable.Range(0, 30).Select(i => batcher.ExecuteAsync(Claim(i, session, 0), Ct)));

        for (var i = 0; i < results.Length; i++)
        {
            var run = (await Client.Kv.GetAsync(prefix + $"t{i}/run", cancellationToken: Ct)).Value!;
            var lockPair = (await Client.Kv.GetAsync(prefix + $"t{i}/lock", cancellationToken: Ct)).Value;
            if (i % 3 == 0)
            {
                Assert.False(results[i].Committed);
                // Indexed within its own three operations: the cas is its second.
                Assert.Equal(1, Assert.Single(results[i].Errors).OperationIndex);
                Assert.Equal("taken", run.ValueAsString());
                Assert.Null(lockPair?.Session);
            }
            else
            {
                Assert.True(results[i].Committed, $"claim {i}: {string.Join("; ", results[i].Errors)}");
                Assert.Equal($"claimed {i}", run.ValueAsString());
                Assert.Equal(session, lockPair!.Session);
            }
        }

        await Client.Sessions.DestroyAsync(session, Ct);
    }

    [Fact]
    public async Task Two_claims_of_the_same_key_at_once_are_sent_apart_and_exactly_one_wins()
    {
        var session = (await Client.Sessions.CreateAsync(new SessionRequest("batcher", TimeSpan.FromSeconds(30)), Ct)).Value;
        await using var batcher = new TxnBatcher(Client.Txn);
        var first = batcher.ExecuteAsync(Claim(7, session, 0), Ct);
        var second = batcher.ExecuteAsync(Claim(7, session, 0), Ct);
        var results = await Task.WhenAll(first, second);

        Assert.Equal(1, results.Count(r => r.Committed));
        var lost = Assert.Single(results, r => !r.Committed);
        Assert.Contains(lost.Errors, e => e.OperationIndex == 1);
        await Client.Sessions.DestroyAsync(session, Ct);
    }

    [Fact]
    public async Task An_unreachable_agent_fails_every_claim_of_the_request_as_unknown()
    {
        using var nowhere = new ConsulClient(new Configuration.ConsulClientOptions { Address = new Uri("http://127.0.0.1:9"), RequestTimeout = TimeSpan.FromSeconds(2) });
        await using var batcher = new TxnBatcher(nowhere.Txn);
        var claims = Enumerable.Range(0, 5).Select(i => batcher.ExecuteAsync(Claim(i, "no-session", 0), Ct)).ToList();
        foreach (var claim in claims)
        {
            await Assert.ThrowsAsync<ConsulUnreachableException>(() => claim);
        }
    }

    [Fact]
    public async Task A_consistent_read_only_transaction_reads_many_keys_in_one_request()
    {
        for (var i = 0; i < 10; i++)
        {
            await Client.Kv.PutStringAsync(prefix + $"r{i}", $"v{i}", cancellationToken: Ct);
        }

        var read = await Client.Txn.ReadAsync([.. Enumerable.Range(0, 12).Select(i => TxnOp.GetTree(prefix + $"r{i}"))], Http.ConsistencyMode.Consistent, Ct);
        Assert.True(read.Value.Committed);
        Assert.Equal(Enumerable.Range(0, 10).Select(i => $"v{i}"), read.Value.Results.OrderBy(r => r.Key.Length).ThenBy(r => r.Key, StringComparer.Ordinal).Select(r => r.ValueAsString()));
        Assert.Throws<ArgumentException>(void () => _ = Client.Txn.ReadAsync([TxnOp.Set(prefix + "w", KvValue.Utf8("x"))], Http.ConsistencyMode.Consistent, Ct));
    }

    private TxnOp[] Claim(int task, string session, ulong index) =>
    [
        TxnOp.Lock(prefix + $"t{task}/lock", KvValue.Utf8($"claimed {task}"), session),
        TxnOp.Cas(prefix + $"t{task}/run", KvValue.Utf8($"claimed {task}"), index),
        TxnOp.CheckNotExists(prefix + $"t{task}/history/1"),
    ];
}
