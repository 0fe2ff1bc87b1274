using Dtask.Consul;
using Dtask.Consul.Kv;
using Dtask.Core.Scheduling;
using Dtask.Core.State;
using Dtask.Executor.Claims;
using Dtask.Executor.Tests.Support;

namespace Dtask.Executor.Tests.Claims;

/// <summary>
/// The history a finish keeps, on a real agent: exactly the task's limit, the oldest entries trimmed first, whether the
/// finish knew which entries to trim from the run record it replaced or listed the history to find out.
/// </summary>
public sealed class HistoryTrimTests(ConsulFixture consul)
{
    private const int Limit = 5;
    private const long First = 1_900_000_020; // A whole minute.
    private static readonly TaskSchedule EveryMinute = TaskSchedule.Create(new ScheduleSpec(null, TimeSpan.FromMinutes(1), null, null, "ops/job"));

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static long Slot(int index) => First + (index * 60L);

    [Fact]
    public async Task Slot_after_slot_the_history_keeps_exactly_its_limit_and_is_listed_only_now_and_then()
    {
        await using var world = new ClaimWorld(consul);
        var (ledger, listings) = Counted(world);
        var finished = new List<long>();
        for (var i = 0; i < 40; i++)
        {
            await RunAsync(world, ledger, Slot(i), EveryMinute);
            finished.Add(Slot(i));
            Assert.Equal(finished.TakeLast(Limit), await world.Store.HistorySlotsAsync(world.Task, Ct));
        }

        // Listed while fewer than the limit were kept (and at the finish that reached it), then one finish in eight at most.
        Assert.InRange(listings(), Limit, Limit + 10);
        Assert.Equal(Slot(35), (await world.Store.ReadRunAsync(world.Task, Ct)).Record!.HistoryFrom);
    }

    [Fact]
    public async Task A_slot_without_a_record_a_schedule_change_and_an_entry_written_out_of_turn_are_listed_and_trimmed_oldest_first()
    {
        await using var world = new ClaimWorld(consul);
        var (ledger, listings) = Counted(world);
        var kept = new List<long>();
        async Task RunAndCheckAsync(long slot, TaskSchedule schedule)
        {
            await RunAsync(world, ledger, slot, schedule);
            kept.Add(slot);
            kept.Sort();
            Assert.Equal(kept.TakeLast(Limit), await world.Store.HistorySlotsAsync(world.Task, Ct));
        }

        for (var i = 0; i < 12; i++)
        {
            await RunAndCheckAsync(Slot(i), EveryMinute);
        }

        // Slot 12 never ran nor was recorded: slot 13's finish must not take the entries for consecutive.
        var before = listings();
        await RunAndCheckAsync(Slot(13), EveryMinute);
        Assert.Equal(before + 1, listings());
        Assert.Null((await world.Store.ReadRunAsync(world.Task, Ct)).Record!.HistoryFrom);
        for (var i = 14; i < 20; i++)
        {
            await RunAndCheckAsync(Slot(i), EveryMinute);
        }

        // Another schedule: its slots are not the ones the record counted.
        before = listings();
        var everyTwoMinutes = TaskSchedule.Create(new ScheduleSpec(null, TimeSpan.FromMinutes(2), null, null, "ops/job"));
        var even = Slot(20) % 120 == 0 ? Slot(20) : Slot(21);
        await RunAndCheckAsync(even, everyTwoMinutes);
        Assert.Equal(before + 1, listings());

        // An old entry written long after its slot (a holder that lost its lock recording its run late): gone within a
        // few finishes, the newest entries kept.
        await world.Client.Kv.PutAsync(world.Layout.HistoryKey(world.Task.Namespace, world.Task.Name, Slot(-50)),
            RunStateStore.Encode(RunRecords.NotRun(Slot(-50), "node-z", RunState.Missed, "late", DateTimeOffset.UnixEpoch)), new KvPutOptions { Cas = 0 }, Ct);
        kept.Add(Slot(-50));
        for (var slot = even + 120; slot <= even + (120 * 20); slot += 120)
        {
            await RunAsync(world, ledger, slot, everyTwoMinutes);
            kept.Add(slot);
        }

        kept.Sort();
        Assert.Equal(kept.TakeLast(Limit), await world.Store.HistorySlotsAsync(world.Task, Ct));
    }

    /// <summary>Claims and finishes <paramref name="slot"/> as the executor does, its claim carrying <paramref name="schedule"/>.</summary>
    private static async Task RunAsync(ClaimWorld world, RunStateStore store, long slot, TaskSchedule schedule)
    {
        var session = await world.SessionAsync();
        var claimed = await new SlotClaimer(store).ClaimAsync(world.Task, slot, "node-a", session.Id, cancellationToken: Ct);
        Assert.Equal(ClaimStatus.Claimed, claimed.Status);
        var claim = claimed.Claim! with { Schedule = schedule };
        var finish = await new RunRecorder(store).FinishAsync(claim, claim.Record with { State = RunState.Succeeded, PreviousSlot = null }, Limit, CancellationToken.None, Ct);
        Assert.Equal(FinishStatus.Recorded, finish.Status);
    }

    /// <summary>A store whose listings of the task's history are counted.</summary>
    private (RunStateStore Store, Func<int> Listings) Counted(ClaimWorld world)
    {
        var listings = 0;
        var faults = new FaultInjectingHandler();
        var history = world.Layout.HistoryPrefix(world.Task.Namespace, world.Task.Name);
        faults.BeforeSend = (method, path, _) =>
        {
            if (method == HttpMethod.Get && path.EndsWith("/" + history, StringComparison.Ordinal))
            {
                Interlocked.Increment(ref listings);
            }

            return Task.CompletedTask;
        };
        var client = new ConsulClient(consul.Agent.ClientOptions(), faults);
        return (new RunStateStore(client, world.Layout), () => Volatile.Read(ref listings));
    }
}
