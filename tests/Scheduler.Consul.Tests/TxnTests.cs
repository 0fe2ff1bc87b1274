using Dtask.Consul.Errors;
using Dtask.Consul.Kv;
using Dtask.Consul.Sessions;
using Dtask.Consul.Tests.Fixtures;
using Dtask.Consul.Txn;
using Dtask.Testing;

namespace Dtask.Consul.Tests;

public sealed class TxnTests(DevAgentFixture consul)
{
    private readonly string prefix = TestKvPrefix.New();
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private ConsulClient Client => consul.Client;

    [Fact]
    public async Task A_claim_locks_and_cas_writes_in_one_transaction()
    {
        var session = (await Client.Sessions.CreateAsync(new SessionRequest("claimer", TimeSpan.FromSeconds(10)) { LockDelay = TimeSpan.FromSeconds(1) }, Ct)).Value;
        await Client.Kv.PutStringAsync(prefix + "run", "slot-1", cancellationToken: Ct);
        var run = (await Client.Kv.GetAsync(prefix + "run", cancellationToken: Ct)).Value!;

        var claim = await Client.Txn.ExecuteAsync(
        [
            TxnOp.Lock(prefix + "lock", KvValue.Utf8("node-a"), session),
            TxnOp.Cas(prefix + "run", KvValue.Utf8("slot-2"), run.ModifyIndex),
            TxnOp.CheckSession(prefix + "lock", session),
            TxnOp.CheckNotExists(prefix + "absent"),
            TxnOp.Get(prefix + "run"),
        ], cancellationToken: Ct);

        Assert.True(claim.Value.Committed);
        Assert.Empty(claim.Value.Errors);
        var fenced = claim.Value.Results.Last(r => r.Key == prefix + "run");
        Assert.Equal("slot-2", fenced.ValueAsString());
        Assert.True(fenced.ModifyIndex > run.ModifyIndex);
        Assert.Equal(session, (await Client.Kv.GetAsync(prefix + "lock", cancellationToken: Ct)).Value!.Session);

        var finish = await Client.Txn.ExecuteAsync(
        [
            TxnOp.CheckSession(prefix + "lock", session),
            TxnOp.CheckIndex(prefix + "run", fenced.ModifyIndex),
            TxnOp.Set(prefix + "history/2", KvValue.Utf8("ok")),
            TxnOp.Unlock(prefix + "lock", KvValue.Utf8(""), session),
            TxnOp.DeleteCas(prefix + "run", fenced.ModifyIndex),
        ], cancellationToken: Ct);

        Assert.True(finish.Value.Committed);
        Assert.Null((await Client.Kv.GetAsync(prefix + "lock", cancellationToken: Ct)).Value!.Session);
        Assert.Null((await Client.Kv.GetAsync(prefix + "run", cancellationToken: Ct)).Value);
        await Client.Sessions.DestroyAsync(session, Ct);
    }

    [Fact]
    public async Task A_rolled_back_transaction_names_the_failing_operation_and_writes_nothing()
    {
        await Client.Kv.PutStringAsync(prefix + "run", "v", cancellationToken: Ct);
        var run = (await Client.Kv.GetAsync(prefix + "run", cancellationToken: Ct)).Value!;

        var result = (await Client.Txn.ExecuteAsync(
        [
            TxnOp.Set(prefix + "other", KvValue.Utf8("x")),
            TxnOp.Cas(prefix + "run", KvValue.Utf8("mine"), run.ModifyIndex - 1),
        ], cancellationToken: Ct)).Value;

        Assert.False(result.Committed);
        var error = Assert.Single(result.Errors);
        Assert.Equal(1, error.OperationIndex);
        Assert.Equal(TxnVerb.Cas, error.Operation!.Verb);
        Assert.Contains("index is stale", error.Reason, StringComparison.Ordinal);
        Assert.Null((await Client.Kv.GetAsync(prefix + "other", cancellationToken: Ct)).Value);
        var thrown = Assert.Throws<ConsulTxnRolledBackException>(() => result.ThrowIfRolledBack());
        Assert.Contains("operation 1 (cas '" + prefix + "run'", thrown.Message, StringComparison.Ordinal);
        Assert.Contains("index is stale", thrown.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Check_not_exists_rolls_back_when_the_key_exists()
    {
        await Client.Kv.PutStringAsync(prefix + "here", "v", cancellationToken: Ct);

        var result = (await Client.Txn.ExecuteAsync([TxnOp.CheckNotExists(prefix + "here"), TxnOp.Set(prefix + "y", KvValue.Utf8("1"))], cancellationToken: Ct)).Value;

        Assert.False(result.Committed);
        Assert.Equal(0, Assert.Single(result.Errors).OperationIndex);
    }

    [Fact]
    public async Task Delete_cas_of_a_key_that_is_gone_commits_and_only_check_index_fails()
    {
        // Why a trigger's drop and claim check the key's index before their delete-cas: Consul takes a key that is gone as
        // deleted already, so a delete-cas alone would let a drop commit after a claim consumed the trigger (or the reverse).
        var created = (await Client.Kv.PutStringAsync(prefix + "trigger", "t", cancellationToken: Ct)).Value;
        Assert.True(created);
        var index = (await Client.Kv.GetAsync(prefix + "trigger", cancellationToken: Ct)).Value!.ModifyIndex;
        Assert.True((await Client.Txn.ExecuteAsync([TxnOp.DeleteCas(prefix + "trigger", index)], cancellationToken: Ct)).Value.Committed);

        var alone = (await Client.Txn.ExecuteAsync([TxnOp.DeleteCas(prefix + "trigger", index), TxnOp.Set(prefix + "alone", KvValue.Utf8("1"))], cancellationToken: Ct)).Value;
        var checkedFirst = (await Client.Txn.ExecuteAsync([TxnOp.CheckIndex(prefix + "trigger", index), TxnOp.DeleteCas(prefix + "trigger", index),
            TxnOp.Set(prefix + "checked", KvValue.Utf8("1"))], cancellationToken: Ct)).Value;

        Assert.True(alone.Committed);
        Assert.False(checkedFirst.Committed);
        Assert.Equal(0, Assert.Single(checkedFirst.Errors).OperationIndex);
        Assert.Null((await Client.Kv.GetAsync(prefix + "checked", cancellationToken: Ct)).Value);
    }

    [Fact]
    public async Task More_than_64_operations_are_split_into_batches_when_allowed()
    {
        var operations = Enumerable.Range(0, 150).Select(i => TxnOp.Set($"{prefix}bulk/{i:000}", KvValue.Utf8(i.ToString(System.Globalization.CultureInfo.InvariantCulture)))).ToList();
        using var client = consul.Agent.CreateClient();

        var result = (await client.Txn.ExecuteAsync(operations, TxnAtomicity.AllowSplit, Ct)).Value;

        Assert.True(result.Committed);
        Assert.Equal(3, result.BatchesCommitted);
        Assert.Equal(3, client.Requests.Writes);
        var stored = (await client.Kv.ListAsync(prefix + "bulk/", cancellationToken: Ct)).Value;
        Assert.Equal(150, stored.Count);
        Assert.Equal("149", stored[149].ValueAsString());
    }

    [Fact]
    public async Task A_failure_in_a_later_batch_reports_its_overall_position_and_earlier_batches_stay()
    {
        await Client.Kv.PutStringAsync(prefix + "exists", "v", cancellationToken: Ct);
        var operations = Enumerable.Range(0, 70).Select(i => TxnOp.Set($"{prefix}b/{i:00}", KvValue.Utf8("x"))).ToList();
        operations.Insert(66, TxnOp.CheckNotExists(prefix + "exists"));

        var result = (await Client.Txn.ExecuteAsync(operations, TxnAtomicity.AllowSplit, Ct)).Value;

        Assert.False(result.Committed);
        Assert.Equal(1, result.BatchesCommitted);
        Assert.Equal(66, Assert.Single(result.Errors).OperationIndex);
        Assert.Equal(64, (await Client.Kv.ListAsync(prefix + "b/", cancellationToken: Ct)).Value.Count);
    }

    [Fact]
    public async Task More_than_64_operations_that_must_be_atomic_are_refused_before_sending()
    {
        using var client = consul.Agent.CreateClient();
        var operations = Enumerable.Range(0, 65).Select(i => TxnOp.Set($"{prefix}n/{i}", KvValue.Utf8("x"))).ToList();

        var error = await Assert.ThrowsAsync<ConsulTooLargeException>(() => client.Txn.ExecuteAsync(operations, cancellationToken: Ct));

        Assert.Contains("65 operations", error.Message, StringComparison.Ordinal);
        Assert.Equal(0, client.Requests.Requests);
    }
}
