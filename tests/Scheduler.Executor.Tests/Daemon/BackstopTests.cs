using System.Globalization;
using Dtask.Consul.Kv;
using Dtask.Consul.Locking;
using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Executor.Claims;
using Dtask.Executor.Tests.Support;

namespace Dtask.Executor.Tests.Daemon;

/// <summary>The contenders of most slots are registered but dead (their sessions live on): the one live node backs them up.</summary>
public sealed class BackstopTests(ConsulFixture consul)
{
    [Fact]
    public async Task A_live_backstop_fires_every_slot_whose_contenders_are_all_dead_within_the_window()
    {
        await using var world = new DaemonWorld(consul.Agent.Address, consul.NewClient());
        var ct = TestContext.Current.CancellationToken;
        // Three registered nodes that never claim: with one contender, the live node is first for about a quarter of
        // the slots and a backstop for the rest.
        List<SessionRenewal> ghosts = [];
        foreach (var name in new[] { "ghost-a", "ghost-b", "ghost-c" })
        {
            var session = await SessionRenewal.CreateAsync(world.Client, new ExecutorSessionOptions { Ttl = TimeSpan.FromSeconds(30) }, cancellationToken: ct);
            ghosts.Add(session);
            var record = new NodeRecord { Node = name, Version = "0.0.0", StartedAt = DateTimeOffset.UtcNow, Session = session.Id };
            Assert.True((await world.Client.Kv.PutStringAsync(world.Layout.NodeKey(name), StateJson.Serialize(record), new KvPutOptions { Acquire = session.Id }, ct)).Value);
        }

        try
        {
            var live = world.Start("live", null, "--contenders", "1");
            await live.ReadyAsync();
            var ran = world.PathOf("ran");
            var task = await world.PutTaskAsync("backed-up", new ScheduledTaskSpec { Every = "2s", Shell = $"echo \"$DTASK_SLOT\" >> {ran}", History = 100 });
            // The window starts at the first slot the child witnessed (the executor has the task from then on), and ends
            // at one that the run of a later slot proved decided.
            await DaemonWorld.ScheduledOnAllAsync([live], "backed-up");
            Assert.True(await Eventually.TrueAsync(() => world.ReadLines("ran").Length > 0, TimeSpan.FromSeconds(30)), "no slot ran");
            var from = world.ReadLines("ran").Select(l => long.Parse(l.Trim(), CultureInfo.InvariantCulture)).Min();
            var until = from + 10;
            Assert.True(await Eventually.TrueAsync(() => world.ReadLines("ran").Any(l => long.Parse(l.Trim(), CultureInfo.InvariantCulture) > until),
                TimeSpan.FromSeconds(60)), $"no slot after {until} ran");
            Assert.Equal(0, await live.StopAsync());

            var lines = world.ReadLines("ran");
            var history = (await world.HistoryAsync(task)).Where(r => r.Slot >= from && r.Slot <= until).ToList();
            var slots = Enumerable.Range(0, (int)(until - from + 1)).Select(i => from + i).Where(s => s % 2 == 0).ToList();
            Assert.NotEmpty(slots);
            foreach (var slot in slots)
            {
                Assert.Single(lines, l => l.Trim() == slot.ToString(CultureInfo.InvariantCulture));
                var record = Assert.Single(history, r => r.Slot == slot);
                Assert.Equal(RunState.Succeeded, record.State);
                Assert.Equal("live", record.Node);
            }
        }
        finally
        {
            foreach (var ghost in ghosts)
            {
                await ghost.DisposeAsync();
            }
        }
    }
}
