using System.Diagnostics;
using System.Globalization;
using Dtask.Consul.Blocking;
using Dtask.Consul.Errors;
using Dtask.Consul.Http;
using Dtask.Consul.Kv;
using Dtask.Consul.Tests.Fixtures;
using Dtask.Testing;
using Microsoft.Extensions.Time.Testing;

namespace Dtask.Consul.Tests;

public sealed class BlockingQueryTests(DevAgentFixture consul)
{
    private readonly string prefix = TestKvPrefix.New();
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private ConsulClient Client => consul.Client;

    [Fact]
    public async Task A_blocking_read_wakes_on_a_change()
    {
        var key = prefix + "spec";
        await Client.Kv.PutStringAsync(key, "v1", cancellationToken: Ct);
        var first = await Client.Kv.GetAsync(key, cancellationToken: Ct);
        var clock = Stopwatch.StartNew();

        var blocked = Client.Kv.GetAsync(key, new QueryOptions { WaitIndex = first.Meta.Index, WaitTime = TimeSpan.FromSeconds(20) }, Ct);
        await Task.Delay(300, Ct);
        Assert.False(blocked.IsCompleted, "the blocking read returned before any change");
        await Client.Kv.PutStringAsync(key, "v2", cancellationToken: Ct);
        var woken = await blocked;

        Assert.Equal("v2", woken.Value!.ValueAsString());
        Assert.True(woken.Meta.Index > first.Meta.Index);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"woke after {clock.Elapsed}");
    }

    [Fact]
    public async Task A_blocking_read_returns_at_its_wait_time_without_a_change()
    {
        var key = prefix + "quiet";
        await Client.Kv.PutStringAsync(key, "v1", cancellationToken: Ct);
        var first = await Client.Kv.GetAsync(key, cancellationToken: Ct);
        var clock = Stopwatch.StartNew();

        var timedOut = await Client.Kv.GetAsync(key, new QueryOptions { WaitIndex = first.Meta.Index, WaitTime = TimeSpan.FromSeconds(1) }, Ct);

        Assert.Equal(first.Meta.Index, timedOut.Meta.Index);
        Assert.Equal("v1", timedOut.Value!.ValueAsString());
        // Consul adds up to wait/16 of jitter.
        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(900), TimeSpan.FromSeconds(3));
    }

    [Fact]
    public async Task The_watcher_returns_the_first_state_at_once_then_only_changes()
    {
        var key = prefix + "watched";
        await Client.Kv.PutStringAsync(key, "v1", cancellationToken: Ct);
        var watch = new BlockingQuery<KvPair?>((q, ct) => Client.Kv.GetAsync(key, q, ct),
            new BlockingQueryOptions { WaitTime = TimeSpan.FromMilliseconds(500), MinInterval = TimeSpan.FromMilliseconds(50) });

        var first = await watch.NextAsync(Ct);
        var next = watch.NextAsync(Ct);
        await Task.Delay(1500, Ct); // three empty waits go by
        Assert.False(next.IsCompleted, "the watcher returned without a change");
        await Client.Kv.PutStringAsync(key, "v2", cancellationToken: Ct);
        var changed = await next;

        Assert.Equal("v1", first.Value!.ValueAsString());
        Assert.Equal("v2", changed.Value!.ValueAsString());
        Assert.Equal(changed.Meta.Index, watch.Index);
    }

    [Fact]
    public async Task A_paced_watcher_of_a_busy_key_asks_once_per_pace_and_still_sees_the_last_write()
    {
        var key = prefix + "busy";
        await Client.Kv.PutStringAsync(key, "0", cancellationToken: Ct);
        var requests = 0;
        var watch = new BlockingQuery<KvPair?>((q, ct) =>
        {
            Interlocked.Increment(ref requests);
            return Client.Kv.GetAsync(key, q, ct);
        }, new BlockingQueryOptions { WaitTime = TimeSpan.FromSeconds(10), ChangePace = () => TimeSpan.FromSeconds(1) });
        await watch.NextAsync(Ct);
        var before = Volatile.Read(ref requests);

        // 20 writes over about a second: unpaced, each one wakes the watcher.
        var writer = Task.Run(async () =>
        {
            for (var i = 1; i <= 20; i++)
            {
                await Client.Kv.PutStringAsync(key, i.ToString(CultureInfo.InvariantCulture), cancellationToken: Ct);
                await Task.Delay(50, Ct);
            }
        }, Ct);
        var clock = Stopwatch.StartNew();
        string? seen = null;
        while (seen != "20")
        {
            seen = (await watch.NextAsync(Ct)).Value!.ValueAsString();
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"the last write was not seen; last value {seen}");
        }

        await writer;
        var asked = Volatile.Read(ref requests) - before;
        Assert.InRange(asked, 1, 6); // at most one a second while the writes went on (about 2 s on a busy machine), and the last
    }

    [Fact]
    public async Task After_a_change_the_next_request_waits_the_pace_asked_then()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UnixEpoch);
        var asked = 0;
        var index = 10UL;
        var pace = TimeSpan.FromSeconds(2);
        var watch = new BlockingQuery<string>((q, _) =>
        {
            asked++;
            return Task.FromResult(new ConsulResponse<string>("x", new ConsulResponseMeta(++index, true, TimeSpan.Zero, null, TimeSpan.Zero)));
        }, new BlockingQueryOptions { MinInterval = TimeSpan.Zero, ChangePace = () => pace }, time);

        await watch.NextAsync(Ct);
        var second = watch.NextAsync(Ct);
        time.Advance(TimeSpan.FromSeconds(1.9));
        Assert.False(second.IsCompleted);
        Assert.Equal(1, asked);
        time.Advance(TimeSpan.FromSeconds(0.1));
        await second;
        pace = TimeSpan.Zero; // from the next answer on: no pace (the third request still waits the pace asked at the second answer)
        var third = watch.NextAsync(Ct);
        time.Advance(TimeSpan.FromSeconds(2));
        await third;
        await watch.NextAsync(Ct);

        Assert.Equal(4, asked);
    }

    [Fact]
    public async Task The_watcher_never_blocks_on_index_zero_and_spaces_out_the_requests_that_follow()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UnixEpoch);
        var asked = new List<QueryOptions>();
        var answers = new Queue<ulong>([5, 0, 0, 7]);
        var watch = new BlockingQuery<string>((q, _) =>
        {
            asked.Add(q);
            return Task.FromResult(new ConsulResponse<string>("x", new ConsulResponseMeta(answers.Dequeue(), true, TimeSpan.Zero, null, TimeSpan.Zero)));
        }, new BlockingQueryOptions { MinInterval = TimeSpan.FromSeconds(1) }, time);

        await watch.NextAsync(Ct);                // index 5
        await watch.NextAsync(Ct);                // index 0: reset
        var third = watch.NextAsync(Ct);          // must wait MinInterval, then ask without blocking
        Assert.False(third.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(1));
        await third;
        var fourth = watch.NextAsync(Ct);
        time.Advance(TimeSpan.FromSeconds(1));
        await fourth;

        Assert.Equal([0UL, 5UL, 0UL, 0UL], asked.Select(q => q.WaitIndex));
        Assert.Equal(7UL, watch.Index);
        Assert.Equal(2, watch.Resets);
    }

    [Fact]
    public async Task The_watcher_backs_off_after_errors()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UnixEpoch);
        var calls = 0;
        var watch = new BlockingQuery<string>((_, _) =>
        {
            calls++;
            throw new ConsulUnreachableException("'k'", "down", null);
        }, new BlockingQueryOptions { ErrorBackoff = TimeSpan.FromSeconds(1), MaxErrorBackoff = TimeSpan.FromSeconds(4) }, time);

        await Assert.ThrowsAsync<ConsulUnreachableException>(() => watch.NextAsync(Ct));
        var second = watch.NextAsync(Ct);
        time.Advance(TimeSpan.FromMilliseconds(999));
        Assert.Equal(1, calls);
        time.Advance(TimeSpan.FromMilliseconds(1));
        await Assert.ThrowsAsync<ConsulUnreachableException>(() => second);
        var third = watch.NextAsync(Ct);
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(2, calls); // the second failure doubled the backoff to 2 s
        time.Advance(TimeSpan.FromSeconds(1));
        await Assert.ThrowsAsync<ConsulUnreachableException>(() => third);
        Assert.Equal(3, calls);
    }
}
