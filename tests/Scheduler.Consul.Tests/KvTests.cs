using System.Text.Json;
using Dtask.Consul.Errors;
using Dtask.Consul.Http;
using Dtask.Consul.Kv;
using Dtask.Consul.Tests.Fixtures;
using Dtask.Testing;

namespace Dtask.Consul.Tests;

public sealed class KvTests(DevAgentFixture consul)
{
    private readonly string prefix = TestKvPrefix.New();
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private ConsulClient Client => consul.Client;

    [Fact]
    public async Task A_written_value_reads_back_with_its_flags_and_indexes()
    {
        var written = await Client.Kv.PutStringAsync(prefix + "a", "héllo", new KvPutOptions { Flags = 42 }, Ct);
        var read = await Client.Kv.GetAsync(prefix + "a", cancellationToken: Ct);

        Assert.True(written.Value);
        var pair = Assert.IsType<KvPair>(read.Value);
        Assert.Equal("héllo", pair.ValueAsString());
        Assert.Equal(42UL, pair.Flags);
        Assert.True(pair.ModifyIndex > 0);
        Assert.Equal(pair.CreateIndex, pair.ModifyIndex);
        Assert.Equal(0UL, pair.LockIndex);
        Assert.Null(pair.Session);
        Assert.True(read.Meta.Index >= pair.ModifyIndex);
        Assert.True(read.Meta.KnownLeader);
    }

    [Fact]
    public async Task A_missing_key_reads_as_null_with_an_index_to_block_on()
    {
        var read = await Client.Kv.GetAsync(prefix + "missing", cancellationToken: Ct);

        Assert.Null(read.Value);
        Assert.True(read.Meta.Index > 0);
    }

    [Fact]
    public async Task Json_values_round_trip()
    {
        var record = new Dictionary<string, object> { ["slot"] = 1700000000, ["state"] = "running" };
        await Client.Kv.PutAsync(prefix + "run", KvValue.Json(record), cancellationToken: Ct);

        var read = (await Client.Kv.GetAsync(prefix + "run", cancellationToken: Ct)).Value!;

        var back = read.ValueAsJson<Dictionary<string, JsonElement>>();
        Assert.Equal(1700000000, back!["slot"].GetInt64());
        Assert.Equal("running", back["state"].GetString());
    }

    [Fact]
    public async Task Recurse_lists_every_key_and_keys_with_a_separator_fold_folders()
    {
        foreach (var key in new[] { "tasks/ns1/a", "tasks/ns1/b", "tasks/ns2/c", "top" })
        {
            await Client.Kv.PutStringAsync(prefix + key, key, cancellationToken: Ct);
        }

        var all = await Client.Kv.ListAsync(prefix + "tasks/", cancellationToken: Ct);
        var level = await Client.Kv.KeysAsync(prefix, "/", cancellationToken: Ct);
        var none = await Client.Kv.ListAsync(prefix + "nothing-here/", cancellationToken: Ct);

        Assert.Equal([prefix + "tasks/ns1/a", prefix + "tasks/ns1/b", prefix + "tasks/ns2/c"], all.Value.Select(p => p.Key));
        Assert.Equal("tasks/ns2/c", all.Value[2].ValueAsString());
        Assert.Equal([prefix + "tasks/", prefix + "top"], level.Value);
        Assert.Empty(none.Value);
    }

    [Fact]
    public async Task Delete_with_cas_and_recurse()
    {
        await Client.Kv.PutStringAsync(prefix + "d/x", "1", cancellationToken: Ct);
        await Client.Kv.PutStringAsync(prefix + "d/y", "2", cancellationToken: Ct);
        var x = (await Client.Kv.GetAsync(prefix + "d/x", cancellationToken: Ct)).Value!;

        var stale = await Client.Kv.DeleteAsync(prefix + "d/x", new KvDeleteOptions { Cas = x.ModifyIndex - 1 }, Ct);
        Assert.False(stale.Value);
        Assert.NotNull((await Client.Kv.GetAsync(prefix + "d/x", cancellationToken: Ct)).Value);

        var current = await Client.Kv.DeleteAsync(prefix + "d/x", new KvDeleteOptions { Cas = x.ModifyIndex }, Ct);
        Assert.True(current.Value);
        Assert.Null((await Client.Kv.GetAsync(prefix + "d/x", cancellationToken: Ct)).Value);

        await Client.Kv.DeleteAsync(prefix + "d/", new KvDeleteOptions { Recurse = true }, Ct);
        Assert.Empty((await Client.Kv.ListAsync(prefix + "d/", cancellationToken: Ct)).Value);
    }

    [Fact]
    public async Task A_cas_write_at_a_stale_index_is_refused_and_the_first_write_stays()
    {
        var key = prefix + "run";
        await Client.Kv.PutStringAsync(key, "v0", new KvPutOptions { Cas = 0 }, Ct);
        var read = (await Client.Kv.GetAsync(key, cancellationToken: Ct)).Value!;

        var first = await Client.Kv.PutStringAsync(key, "node-a", new KvPutOptions { Cas = read.ModifyIndex }, Ct);
        var second = await Client.Kv.PutStringAsync(key, "node-b", new KvPutOptions { Cas = read.ModifyIndex }, Ct);
        var createAgain = await Client.Kv.PutStringAsync(key, "node-c", new KvPutOptions { Cas = 0 }, Ct);

        Assert.True(first.Value);
        Assert.False(second.Value);
        Assert.False(createAgain.Value);
        Assert.Equal("node-a", (await Client.Kv.GetAsync(key, cancellationToken: Ct)).Value!.ValueAsString());
    }

    [Fact]
    public async Task A_value_over_512_KiB_is_refused_as_too_large_naming_the_key()
    {
        var key = prefix + "big";
        var value = new byte[(512 * 1024) + 1];

        var error = await Assert.ThrowsAsync<ConsulTooLargeException>(() => Client.Kv.PutAsync(key, value, cancellationToken: Ct));

        Assert.Contains(key, error.Message, StringComparison.Ordinal);
        Assert.Contains("too large", error.Message, StringComparison.Ordinal);
        Assert.Null((await Client.Kv.GetAsync(key, cancellationToken: Ct)).Value);
    }

    [Fact]
    public async Task Every_response_carries_the_agents_clock()
    {
        var response = await Client.Kv.GetAsync(prefix + "x", cancellationToken: Ct);

        var serverDate = Assert.NotNull(response.Meta.ServerDate);
        Assert.InRange((DateTimeOffset.UtcNow - serverDate).Duration(), TimeSpan.Zero, TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task Reads_and_writes_are_counted_separately()
    {
        using var client = consul.Agent.CreateClient();
        await client.Kv.PutStringAsync(prefix + "c", "1", cancellationToken: Ct);
        await client.Kv.GetAsync(prefix + "c", cancellationToken: Ct);
        await client.Kv.GetAsync(prefix + "c", QueryOptions.ConsistentRead, Ct);
        await client.Kv.DeleteAsync(prefix + "c", cancellationToken: Ct);

        Assert.Equal(new ConsulRequestCount(4, 2), client.Requests.Snapshot());
    }

    [Fact]
    public async Task Stale_and_consistent_reads_see_a_written_value()
    {
        await Client.Kv.PutStringAsync(prefix + "m", "v", cancellationToken: Ct);

        var stale = await Client.Kv.GetAsync(prefix + "m", new QueryOptions { Consistency = ConsistencyMode.Stale }, Ct);
        var consistent = await Client.Kv.GetAsync(prefix + "m", QueryOptions.ConsistentRead, Ct);

        Assert.Equal("v", stale.Value!.ValueAsString());
        Assert.Equal("v", consistent.Value!.ValueAsString());
    }
}
