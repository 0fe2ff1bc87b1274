using Dtask.Consul.Errors;
using Dtask.Consul.Sessions;
using Dtask.Consul.Tests.Fixtures;
using Dtask.Testing;

namespace Dtask.Consul.Tests;

public sealed class AclTests(AclAgentFixture acl) : IClassFixture<AclAgentFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_token_limited_to_the_dtask_prefix_writes_there_and_gets_a_clear_permission_error_elsewhere()
    {
        using var master = acl.Agent.CreateMasterClient();
        var name = "dtask-executor-" + Guid.NewGuid().ToString("N")[..8];
        await master.Acl.CreatePolicyAsync(name, """
            key_prefix "dtask/" { policy = "write" }
            session_prefix "" { policy = "write" }
            """, cancellationToken: Ct);
        var token = (await master.Acl.CreateTokenAsync("executor test token", [name], Ct)).Value;
        var secret = token.Secret.Reveal();
        using var executor = acl.Agent.CreateClient(token.Secret);
        var allowed = TestKvPrefix.New("dtask/") + "run";
        var forbidden = TestKvPrefix.New("elsewhere/") + "run";

        var written = await executor.Kv.PutStringAsync(allowed, "ok", cancellationToken: Ct);
        var self = (await executor.Acl.ReadSelfAsync(Ct)).Value;
        var session = (await executor.Sessions.CreateAsync(new SessionRequest("executor", TimeSpan.FromSeconds(10)), Ct)).Value;
        var denied = await Assert.ThrowsAsync<ConsulPermissionDeniedException>(() => executor.Kv.PutStringAsync(forbidden, "no", cancellationToken: Ct));

        Assert.True(written.Value);
        Assert.Equal("ok", (await master.Kv.GetAsync(allowed, cancellationToken: Ct)).Value!.ValueAsString());
        Assert.Equal([name], self.Policies);
        Assert.NotEmpty(session);
        Assert.Null((await master.Kv.GetAsync(forbidden, cancellationToken: Ct)).Value);
        Assert.Contains(forbidden, denied.Message, StringComparison.Ordinal);
        Assert.Contains("permission denied", denied.Message, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(secret, denied.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain(secret, token.ToString(), StringComparison.Ordinal);
        await master.Acl.DeleteTokenAsync(token.AccessorId, Ct);
    }

    [Fact]
    public async Task In_batched_transactions_only_the_one_touching_a_forbidden_key_is_refused_and_the_others_commit()
    {
        using var master = acl.Agent.CreateMasterClient();
        var name = "dtask-batch-" + Guid.NewGuid().ToString("N")[..8];
        var allowed = TestKvPrefix.New("dtask/");
        var forbidden = TestKvPrefix.New("elsewhere/") + "spec";
        await master.Acl.CreatePolicyAsync(name, $$"""key_prefix "{{allowed}}" { policy = "write" }""", cancellationToken: Ct);
        var token = (await master.Acl.CreateTokenAsync("batch test token", [name], Ct)).Value;
        using var client = acl.Agent.CreateClient(token.Secret);
        await using var batcher = new Txn.TxnBatcher(client.Txn);

        var good = Enumerable.Range(0, 4).Select(i => batcher.ExecuteAsync([Txn.TxnOp.Set(allowed + $"run{i}", Kv.KvValue.Utf8("ok"))], Ct)).ToList();
        var refused = batcher.ExecuteAsync([Txn.TxnOp.Set(allowed + "with-bad", Kv.KvValue.Utf8("no")), Txn.TxnOp.Cas(forbidden, Kv.KvValue.Utf8("no"), 0)], Ct);

        var error = await Assert.ThrowsAsync<ConsulPermissionDeniedException>(() => refused);
        Assert.Equal(forbidden, error.Subject);
        foreach (var result in await Task.WhenAll(good))
        {
            Assert.True(result.Committed);
        }

        for (var i = 0; i < 4; i++)
        {
            Assert.Equal("ok", (await master.Kv.GetAsync(allowed + $"run{i}", cancellationToken: Ct)).Value!.ValueAsString());
        }

        Assert.Null((await master.Kv.GetAsync(allowed + "with-bad", cancellationToken: Ct)).Value);
        await master.Acl.DeleteTokenAsync(token.AccessorId, Ct);
    }

    [Fact]
    public async Task A_transaction_touching_a_key_the_token_may_not_write_is_a_permission_error_naming_that_key_and_applies_nothing()
    {
        using var master = acl.Agent.CreateMasterClient();
        var name = "dtask-txn-" + Guid.NewGuid().ToString("N")[..8];
        var allowed = TestKvPrefix.New("dtask/");
        var forbidden = TestKvPrefix.New("elsewhere/") + "spec";
        await master.Acl.CreatePolicyAsync(name, $$"""key_prefix "{{allowed}}" { policy = "write" }""", cancellationToken: Ct);
        var token = (await master.Acl.CreateTokenAsync("txn test token", [name], Ct)).Value;
        using var client = acl.Agent.CreateClient(token.Secret);

        var error = await Assert.ThrowsAsync<ConsulPermissionDeniedException>(() => client.Txn.ExecuteAsync(
            [Txn.TxnOp.Set(allowed + "run", Kv.KvValue.Utf8("ok")), Txn.TxnOp.Cas(forbidden, Kv.KvValue.Utf8("no"), 0)], cancellationToken: Ct));

        Assert.Equal(forbidden, error.Subject);
        Assert.Contains($"write key '{forbidden}' was refused: permission denied", error.Message, StringComparison.Ordinal);
        Assert.Null((await master.Kv.GetAsync(allowed + "run", cancellationToken: Ct)).Value);
        Assert.Null((await master.Kv.GetAsync(forbidden, cancellationToken: Ct)).Value);
        await master.Acl.DeleteTokenAsync(token.AccessorId, Ct);
    }

    [Fact]
    public async Task Without_a_token_default_deny_refuses_reads_and_writes()
    {
        using var anonymous = acl.Agent.CreateClient();

        var write = await Assert.ThrowsAsync<ConsulPermissionDeniedException>(() => anonymous.Kv.PutStringAsync("dtask/x", "v", cancellationToken: Ct));
        var read = await Assert.ThrowsAsync<ConsulPermissionDeniedException>(() => anonymous.Kv.GetAsync("dtask/x", cancellationToken: Ct));

        Assert.Contains("write key 'dtask/x'", write.Message, StringComparison.Ordinal);
        Assert.Contains("read key 'dtask/x'", read.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_deleted_token_is_refused_and_its_text_stays_out_of_the_error()
    {
        using var master = acl.Agent.CreateMasterClient();
        var name = "dtask-gone-" + Guid.NewGuid().ToString("N")[..8];
        await master.Acl.CreatePolicyAsync(name, """key_prefix "dtask/" { policy = "write" }""", cancellationToken: Ct);
        var token = (await master.Acl.CreateTokenAsync("deleted token", [name], Ct)).Value;
        await master.Acl.DeleteTokenAsync(token.AccessorId, Ct);
        using var client = acl.Agent.CreateClient(token.Secret);

        var error = await Assert.ThrowsAsync<ConsulPermissionDeniedException>(() => client.Kv.PutStringAsync("dtask/y", "v", cancellationToken: Ct));

        Assert.DoesNotContain(token.Secret.Reveal(), error.ToString(), StringComparison.Ordinal);
    }
}
