using System.Text;
using Dtask.Consul;
using Dtask.Consul.Http;
using Dtask.Consul.Kv;
using Dtask.Consul.Locking;
using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Executor.Claims;
using Dtask.Executor.Ledger;
using Dtask.Executor.Tests.Support;
using Dtask.Testing;
using Dtask.Testing.Ledger;

namespace Dtask.Executor.Tests.Ledger;

/// <summary>
/// What every task ledger does, as one set of cases run against the Consul ledger on a real agent
/// (<see cref="ConsulTaskLedgerConformanceTests"/>) and against the in-memory one used by the in-process firing tests
/// (<see cref="InMemoryTaskLedgerConformanceTests"/>), so the two cannot drift apart.
/// </summary>
public abstract class TaskLedgerConformance : IAsyncDisposable
{
    private static readonly TimeSpan NoLockDelay = TimeSpan.Zero;

    protected TaskId Task { get; } = new("ops", "job-" + Guid.NewGuid().ToString("N")[..8]);

    protected abstract ITaskLedger Ledger { get; }

    protected static CancellationToken Cancel => TestContext.Current.CancellationToken;

    /// <summary>A slot far from "now", so no deadline interferes.</summary>
    protected static long Slot(int index) => 1_900_000_000 + (index * 60);

    /// <summary>A live session; when it ends, its locks are refused to everyone for <paramref name="lockDelay"/>.</summary>
    protected abstract Task<ILedgerSession> OpenSessionAsync(TimeSpan lockDelay);

    /// <summary>Ends <paramref name="session"/> as the ledger's store invalidates one: its locks are released.</summary>
    protected abstract Task EndSessionAsync(ILedgerSession session);

    /// <summary>Writes a manual trigger of <see cref="Task"/>, as <c>dtask trigger</c> does.</summary>
    protected abstract Task<ManualTrigger> AddTriggerAsync(string id);

    /// <summary>The modify index of the stop request of <paramref name="runId"/>, as the executors' watch sees it; 0 when absent.</summary>
    protected abstract Task<ulong> StopRequestIndexAsync(string runId);

    /// <summary>Writes the spec of <paramref name="task"/> as the operator does.</summary>
    protected abstract Task PutSpecAsync(TaskId task, string json);

    /// <summary>The spec refusal of <paramref name="task"/> as <c>dtask describe</c> reads it; null when none.</summary>
    protected abstract Task<SpecRefusal?> ReadSpecRefusalAsync(TaskId task);

    /// <summary>The key layout the ledger lists under.</summary>
    protected abstract KvLayout Layout { get; }

    public abstract ValueTask DisposeAsync();

    [Fact]
    public async Task A_node_name_is_registered_by_one_live_session_and_another_is_told_who_holds_it()
    {
        var a = await OpenSessionAsync(NoLockDelay);
        var b = await OpenSessionAsync(NoLockDelay);
        var record = new NodeRecord { Node = "node-a", Version = "1.0", StartedAt = DateTimeOffset.UtcNow, Session = a.Id };

        var first = await Ledger.RegisterNodeAsync(record, a.Id, Cancel);
        var again = await Ledger.RegisterNodeAsync(record with { Labels = new Dictionary<string, string> { ["zone"] = "b" } }, a.Id, Cancel);
        var other = await Ledger.RegisterNodeAsync(record with { Session = b.Id }, b.Id, Cancel);

        Assert.True(first.Registered);
        Assert.True(again.Registered);
        Assert.False(other.Registered);
        Assert.Equal(a.Id, other.Holder);
        var listed = Assert.Single((await Ledger.ListAsync(LedgerFolder.Nodes, QueryOptions.ConsistentRead, Cancel)).Value);
        Assert.Equal((Layout.NodeKey("node-a"), a.Id), (listed.Key, listed.Session));
        Assert.Equal("b", StateJson.Deserialize<NodeRecord>(listed.ValueAsString()).Labels["zone"]);

        await Ledger.RemoveNodeAsync("node-a", Cancel);
        Assert.Empty((await Ledger.ListAsync(LedgerFolder.Nodes, QueryOptions.ConsistentRead, Cancel)).Value);
        Assert.True((await Ledger.RegisterNodeAsync(record with { Session = b.Id }, b.Id, Cancel)).Registered);
    }

    [Fact]
    public async Task A_watch_of_the_task_specs_answers_when_a_spec_is_written_and_lists_it()
    {
        var before = await Ledger.ListAsync(LedgerFolder.Tasks, QueryOptions.ConsistentRead, Cancel);
        var watching = Ledger.ListAsync(LedgerFolder.Tasks, QueryOptions.ConsistentRead with { WaitIndex = before.Meta.Index, WaitTime = TimeSpan.FromSeconds(30) }, Cancel);

        await PutSpecAsync(Task, "{\"schedule\":\"@every 1m\"}");
        var answer = await watching.WaitAsync(TimeSpan.FromSeconds(20), Cancel);
        Assert.True(answer.Meta.Index > before.Meta.Index);

        // A blocking query may also wake for a write elsewhere in KV (an empty folder's index is the store's): watch again
        // from the index it gave, as every watcher does, until the spec is listed.
        for (var round = 0; round < 20 && answer.Value.All(p => p.Key != Layout.TaskKey(Task.Namespace, Task.Name)); round++)
        {
            answer = await Ledger.ListAsync(LedgerFolder.Tasks, QueryOptions.ConsistentRead with { WaitIndex = answer.Meta.Index, WaitTime = TimeSpan.FromSeconds(5) }, Cancel)
                .WaitAsync(TimeSpan.FromSeconds(20), Cancel);
        }

        var spec = Assert.Single(answer.Value, p => p.Key == Layout.TaskKey(Task.Namespace, Task.Name));
        Assert.Contains("@every 1m", spec.ValueAsString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_control_folder_lists_pending_triggers_and_stops_by_their_ids_until_they_are_consumed()
    {
        await Ledger.PlaceControlAnchorAsync(Cancel);
        await Ledger.PlaceControlAnchorAsync(Cancel);
        var trigger = await Ledger.RequestTriggerAsync(Task, new ControlRequest { Action = ControlAction.Trigger, Id = "t-1", RequestedAt = DateTimeOffset.UtcNow }, Cancel);
        Assert.NotNull(trigger);
        Assert.True(await Ledger.RequestStopAsync(Task, new ControlRequest { Action = ControlAction.Stop, Id = "s-1", RunId = "run-1", RequestedAt = DateTimeOffset.UtcNow }, Cancel));

        var listed = (await Ledger.ListAsync(LedgerFolder.Control, QueryOptions.ConsistentRead, Cancel)).Value
            .Where(p => p.Key.StartsWith(Layout.ControlPrefix + Task.Namespace + "/" + Task.Name + "/", StringComparison.Ordinal))
            .Select(p => KvLayout.TrySplitControlKey(p.Key, Layout.ControlPrefix, out _, out _, out var action, out var id) ? $"{action}:{id}" : "unreadable " + p.Key)
            .Order(StringComparer.Ordinal).ToList();
        Assert.Equal(["Stop:run-1", "Trigger:t-1"], listed);
        Assert.Single((await Ledger.ListAsync(LedgerFolder.Control, QueryOptions.ConsistentRead, Cancel)).Value, p => p.Key == Layout.ControlPrefix + ".watch");

        Assert.True(await Ledger.ConsumeStopAsync(Task, "run-1", await StopRequestIndexAsync("run-1"), Cancel));
        Assert.DoesNotContain((await Ledger.ListAsync(LedgerFolder.Control, QueryOptions.ConsistentRead, Cancel)).Value, p => p.Key.Contains("/stop/", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_spec_refusal_is_stored_where_describe_reads_it()
    {
        var refusal = new SpecRefusal("node-a", 42, "the signature does not verify", 41, DateTimeOffset.UtcNow);

        await Ledger.ReportSpecRefusalAsync(Task, refusal, Cancel);

        Assert.Equal((refusal.Node, refusal.SpecIndex, refusal.Reason, refusal.KeptIndex), await ReadSpecRefusalAsync(Task) is { } stored
            ? (stored.Node, stored.SpecIndex, stored.Reason, stored.KeptIndex) : default);
    }

    [Fact]
    public async Task A_claim_then_its_finish_leaves_the_run_record_and_one_history_entry()
    {
        var session = await OpenSessionAsync(NoLockDelay);
        var claimed = await Ledger.ClaimAsync(Task, Slot(1), "node-a", session.Id, cancellationToken: Cancel);
        Assert.Equal(ClaimStatus.Claimed, claimed.Status);
        var claim = claimed.Claim!;
        Assert.Equal(Slot(1), claim.Slot);
        Assert.Equal(claim.RecordIndex, (await Ledger.ReadRunAsync(Task, Cancel)).ModifyIndex);

        var finish = await Ledger.FinishAsync(claim, Final(claim, RunState.Succeeded), 10, CancellationToken.None, Cancel);

        Assert.Equal(FinishStatus.Recorded, finish.Status);
        Assert.True(finish.HistoryWritten);
        var run = (await Ledger.ReadRunAsync(Task, Cancel)).Record!;
        Assert.Equal((claim.RunId, RunState.Succeeded), (run.RunId, run.State));
        var entry = Assert.Single(await Ledger.ReadHistoryAsync(Task, Cancel));
        Assert.Equal((Slot(1), claim.RunId, RunState.Succeeded, "node-a"), (entry.Slot, entry.RunId, entry.State, entry.Node));
    }

    [Fact]
    public async Task A_second_claim_of_a_held_slot_is_refused_and_a_later_slot_is_recorded_skipped_once()
    {
        var a = await OpenSessionAsync(NoLockDelay);
        var b = await OpenSessionAsync(NoLockDelay);
        var first = await Ledger.ClaimAsync(Task, Slot(1), "node-a", a.Id, cancellationToken: Cancel);
        Assert.Equal(ClaimStatus.Claimed, first.Status);

        var again = await Ledger.ClaimAsync(Task, Slot(1), "node-b", b.Id, cancellationToken: Cancel);
        Assert.Equal(ClaimStatus.AlreadyClaimed, again.Status);
        Assert.Equal(first.Claim!.RunId, again.Current!.RunId);

        var busy = await Ledger.ClaimAsync(Task, Slot(2), "node-b", b.Id, cancellationToken: Cancel);
        Assert.Equal(ClaimStatus.Busy, busy.Status);
        Assert.Equal(first.Claim.RecordIndex, busy.CurrentIndex);
        Assert.Equal(MarkStatus.Written, await Ledger.RecordSkippedAsync(Task, Slot(2), "node-b", RunReasons.StillRunning, busy.CurrentIndex, Cancel));
        Assert.Equal(MarkStatus.AlreadyRecorded, await Ledger.RecordSkippedAsync(Task, Slot(2), "node-c", RunReasons.StillRunning, busy.CurrentIndex, Cancel));

        var skipped = Assert.Single(await Ledger.ReadHistoryAsync(Task, Cancel));
        Assert.Equal((Slot(2), RunState.Skipped, RunReasons.StillRunning, "node-b"), (skipped.Slot, skipped.State, skipped.Reason, skipped.Node));
        Assert.Equal(first.Claim.RunId, (await Ledger.ReadRunAsync(Task, Cancel)).Record!.RunId); // The holder's record is untouched.
        Assert.Equal(FinishStatus.Recorded, (await Ledger.FinishAsync(first.Claim, Final(first.Claim, RunState.Succeeded), 10, CancellationToken.None, Cancel)).Status);
    }

    [Fact]
    public async Task A_running_record_whose_holder_session_ended_is_recorded_abandoned_by_the_next_claim()
    {
        var a = await OpenSessionAsync(NoLockDelay);
        var held = (await Ledger.ClaimAsync(Task, Slot(1), "node-a", a.Id, cancellationToken: Cancel)).Claim!;
        await EndSessionAsync(a);

        var b = await OpenSessionAsync(NoLockDelay);
        var next = await Ledger.ClaimAsync(Task, Slot(2), "node-b", b.Id, cancellationToken: Cancel);

        Assert.Equal(ClaimStatus.Claimed, next.Status);
        var abandoned = next.Abandoned!;
        Assert.Equal((held.RunId, RunState.Abandoned, RunReasons.HolderSessionGone), (abandoned.RunId, abandoned.State, abandoned.Reason));
        var history = await Ledger.ReadHistoryAsync(Task, Cancel);
        var entry = Assert.Single(history, r => r.Slot == Slot(1));
        Assert.Equal((held.RunId, RunState.Abandoned, RunReasons.HolderSessionGone), (entry.RunId, entry.State, entry.Reason));
    }

    [Fact]
    public async Task A_claim_while_lock_delay_of_an_ended_session_is_in_force_answers_lock_delay()
    {
        var a = await OpenSessionAsync(TimeSpan.FromSeconds(30));
        await Ledger.ClaimAsync(Task, Slot(1), "node-a", a.Id, cancellationToken: Cancel);
        await EndSessionAsync(a);

        var b = await OpenSessionAsync(NoLockDelay);
        var refused = await Ledger.ClaimAsync(Task, Slot(2), "node-b", b.Id, cancellationToken: Cancel);

        Assert.Equal(ClaimStatus.LockDelay, refused.Status);
        Assert.Null(refused.Claim);
        Assert.Equal(RunState.Abandoned, (await Ledger.ReadRunAsync(Task, Cancel)).Record!.State);
    }

    [Fact]
    public async Task Starting_an_attempt_after_the_lock_was_lost_writes_nothing_and_answers_null()
    {
        var a = await OpenSessionAsync(NoLockDelay);
        var claim = (await Ledger.ClaimAsync(Task, Slot(1), "node-a", a.Id, cancellationToken: Cancel)).Claim!;
        var before = await Ledger.ReadRunAsync(Task, Cancel);
        await EndSessionAsync(a);

        Assert.Null(await Ledger.StartAttemptAsync(claim, 2, CancellationToken.None, Cancel));

        var after = await Ledger.ReadRunAsync(Task, Cancel);
        Assert.Equal((before.ModifyIndex, 1), (after.ModifyIndex, after.Record!.Attempt));
    }

    [Fact]
    public async Task Finishing_trims_the_history_to_its_limit_keeping_the_newest_slots()
    {
        var session = await OpenSessionAsync(NoLockDelay);
        for (var i = 1; i <= 5; i++)
        {
            await ClaimAndFinishAsync(session, Slot(i), historyLimit: 3);
        }

        var history = await Ledger.ReadHistoryAsync(Task, Cancel);
        Assert.Equal([Slot(5), Slot(4), Slot(3)], history.Select(r => r.Slot));
    }

    [Fact]
    public async Task Every_record_that_replaces_another_says_where_the_slots_it_passed_over_begin()
    {
        var a = await OpenSessionAsync(NoLockDelay);
        var first = (await Ledger.ClaimAsync(Task, Slot(1), "node-a", a.Id, cancellationToken: Cancel)).Claim!;
        Assert.Null(first.Record.PreviousSlot); // The task's first record passes over nothing.
        await Ledger.FinishAsync(first, Final(first, RunState.Succeeded) with { PreviousSlot = null }, 10, CancellationToken.None, Cancel);

        // Its claimer looked (the finished record has no PreviousSlot): the next claim passes over the slots after it.
        var third = (await Ledger.ClaimAsync(Task, Slot(3), "node-a", a.Id, cancellationToken: Cancel)).Claim!;
        Assert.Equal(Slot(1), third.Record.PreviousSlot);
        Assert.Equal(Slot(1), (await Ledger.ReadRunAsync(Task, Cancel)).Record!.PreviousSlot);

        // Its claimer did not get to look (the finished record keeps it): the next record starts where it started.
        await Ledger.FinishAsync(third, Final(third, RunState.Succeeded), 10, CancellationToken.None, Cancel);
        Assert.Equal(MarkStatus.Written, await Ledger.RecordMissedAsync(Task, Slot(5), "node-b", RunReasons.NotFiredInTime, 10, Cancel));
        Assert.Equal((Slot(5), Slot(1)), ((await Ledger.ReadRunAsync(Task, Cancel)).Record!.Slot, (await Ledger.ReadRunAsync(Task, Cancel)).Record!.PreviousSlot));

        // A holder that died keeps it through the abandoned record, and the claim after it carries it on.
        var sixth = (await Ledger.ClaimAsync(Task, Slot(6), "node-a", a.Id, cancellationToken: Cancel)).Claim!;
        Assert.Equal(Slot(1), sixth.Record.PreviousSlot);
        await EndSessionAsync(a);
        var b = await OpenSessionAsync(NoLockDelay);
        var seventh = await Ledger.ClaimAsync(Task, Slot(7), "node-b", b.Id, cancellationToken: Cancel);
        Assert.Equal(Slot(1), seventh.Abandoned!.PreviousSlot);
        Assert.Equal(Slot(1), seventh.Claim!.Record.PreviousSlot);
    }

    [Fact]
    public async Task A_slot_at_or_before_the_last_handled_one_gets_no_missed_marker()
    {
        var session = await OpenSessionAsync(NoLockDelay);
        for (var i = 1; i <= 3; i++)
        {
            await ClaimAndFinishAsync(session, Slot(i), historyLimit: 2);
        }

        // Slot 1 ran; its entry was trimmed. Slot 3 is the run record's own.
        Assert.Equal(MarkStatus.Superseded, await Ledger.RecordMissedAsync(Task, Slot(1), "node-b", RunReasons.NotClaimedBeforeDeadline, 2, Cancel));
        Assert.Equal(MarkStatus.HeldByRun, await Ledger.RecordMissedAsync(Task, Slot(3), "node-b", RunReasons.NotClaimedBeforeDeadline, 2, Cancel));

        var history = await Ledger.ReadHistoryAsync(Task, Cancel);
        Assert.Equal([Slot(3), Slot(2)], history.Select(r => r.Slot));
        Assert.All(history, r => Assert.Equal(RunState.Succeeded, r.State));
        Assert.Equal(RunState.Succeeded, (await Ledger.ReadRunAsync(Task, Cancel)).Record!.State);
    }

    [Fact]
    public async Task Releasing_an_unconfirmed_claim_records_it_missed_and_frees_the_lock()
    {
        var a = await OpenSessionAsync(TimeSpan.FromSeconds(30));
        var claim = (await Ledger.ClaimAsync(Task, Slot(1), "node-a", a.Id, "unconfirmed-run", Cancel)).Claim!;

        Assert.Null(await Ledger.ReleaseUnconfirmedAsync(Task, Slot(1), "some-other-run", a.Id, Cancel));
        var released = await Ledger.ReleaseUnconfirmedAsync(Task, Slot(1), claim.RunId, a.Id, Cancel);

        Assert.Equal((RunState.Missed, RunReasons.ClaimUnconfirmed), (released!.State, released.Reason));
        var run = (await Ledger.ReadRunAsync(Task, Cancel)).Record!;
        Assert.Equal((claim.RunId, RunState.Missed, RunReasons.ClaimUnconfirmed), (run.RunId, run.State, run.Reason));
        var entry = Assert.Single(await Ledger.ReadHistoryAsync(Task, Cancel));
        Assert.Equal((Slot(1), RunState.Missed, RunReasons.ClaimUnconfirmed), (entry.Slot, entry.State, entry.Reason));

        // Released, not invalidated: no lock-delay, the next slot is claimed at once.
        var b = await OpenSessionAsync(NoLockDelay);
        Assert.Equal(ClaimStatus.Claimed, (await Ledger.ClaimAsync(Task, Slot(2), "node-b", b.Id, cancellationToken: Cancel)).Status);
    }

    [Fact]
    public async Task A_claimed_slot_is_seen_by_a_peek_and_its_history_entry_exists_once_it_finished()
    {
        var session = await OpenSessionAsync(NoLockDelay);
        Assert.Null(await Ledger.PeekRunAsync(Task, Cancel));
        var claim = (await Ledger.ClaimAsync(Task, Slot(1), "node-a", session.Id, cancellationToken: Cancel)).Claim!;

        Assert.Equal(claim.RunId, (await Ledger.PeekRunAsync(Task, Cancel))!.RunId);
        Assert.False(await Ledger.HasHistoryAsync(Task, Slot(1), consistent: true, Cancel));
        await Ledger.FinishAsync(claim, Final(claim, RunState.Succeeded), 10, CancellationToken.None, Cancel);

        Assert.True(await Ledger.HasHistoryAsync(Task, Slot(1), consistent: true, Cancel));
        Assert.False(await Ledger.HasHistoryAsync(Task, Slot(2), consistent: true, Cancel));
        await Ledger.WaitForRunChangeAsync(Task, TimeSpan.FromMinutes(5), Cancel); // Not running: returns at once.
    }

    [Fact]
    public async Task A_stop_request_is_written_once_seen_and_cleared()
    {
        var first = StopRequest("run-1", "node-b");

        Assert.True(await Ledger.RequestStopAsync(Task, first, Cancel));
        Assert.False(await Ledger.RequestStopAsync(Task, StopRequest("run-1", "node-c"), Cancel));
        Assert.True(await Ledger.HasStopRequestAsync(Task, "run-1", Cancel));
        Assert.False(await Ledger.HasStopRequestAsync(Task, "run-2", Cancel));

        await Ledger.ClearStopAsync(Task, "run-1", Cancel);
        Assert.False(await Ledger.HasStopRequestAsync(Task, "run-1", Cancel));
    }

    [Fact]
    public async Task A_stop_request_is_consumed_only_at_the_index_its_holder_saw()
    {
        Assert.True(await Ledger.RequestStopAsync(Task, StopRequest("run-1", "node-b"), Cancel));
        var seen = await StopRequestIndexAsync("run-1");
        Assert.NotEqual(0UL, seen);

        // Cleared and asked again meanwhile: the holder's consumption of the old one leaves the new one.
        await Ledger.ClearStopAsync(Task, "run-1", Cancel);
        Assert.True(await Ledger.RequestStopAsync(Task, StopRequest("run-1", "node-c"), Cancel));
        Assert.False(await Ledger.ConsumeStopAsync(Task, "run-1", seen, Cancel));
        Assert.True(await Ledger.HasStopRequestAsync(Task, "run-1", Cancel));

        Assert.True(await Ledger.ConsumeStopAsync(Task, "run-1", await StopRequestIndexAsync("run-1"), Cancel));
        Assert.False(await Ledger.HasStopRequestAsync(Task, "run-1", Cancel));
    }

    [Fact]
    public async Task Batched_reads_of_the_run_record_answer_what_a_single_read_does()
    {
        Assert.Equal(new StoredRun(null, 0), await Ledger.ReadRunBatchedAsync(Task, Cancel));
        var session = await OpenSessionAsync(NoLockDelay);
        await ClaimAndFinishAsync(session, Slot(3), 10);

        var reads = await System.Threading.Tasks.Task.WhenAll(Enumerable.Range(0, 5).Select(_ => Ledger.ReadRunBatchedAsync(Task, Cancel)));
        var single = await Ledger.ReadRunAsync(Task, Cancel);
        Assert.All(reads, r => Assert.Equal((single.ModifyIndex, Slot(3), RunState.Succeeded), (r.ModifyIndex, r.Record!.Slot, r.Record.State)));
    }

    [Fact]
    public async Task A_trigger_request_is_written_under_its_own_key_once_and_is_claimed_once()
    {
        var request = new ControlRequest { Action = ControlAction.Trigger, Id = "t-" + Guid.NewGuid().ToString("N")[..8], RequestedAt = DateTimeOffset.UtcNow, RequestedBy = "cli@test" };
        Assert.True(await Ledger.RequestStopAsync(Task, StopRequest("run-1", "node-b"), Cancel));

        var trigger = await Ledger.RequestTriggerAsync(Task, request, Cancel);
        Assert.NotNull(trigger);
        Assert.Equal(request.Id, trigger.Id);
        Assert.True(trigger.CreateIndex > 0);
        Assert.Null(await Ledger.RequestTriggerAsync(Task, request, Cancel));
        Assert.True(await Ledger.HasStopRequestAsync(Task, "run-1", Cancel)); // Not overwritten.

        var session = await OpenSessionAsync(NoLockDelay);
        var claimed = await Ledger.ClaimManualAsync(Task, trigger, "node-a", session.Id, SlotClaimer.NewRunId(trigger.Sequence), Cancel);
        Assert.Equal(ClaimStatus.Claimed, claimed.Status);
        var again = await Ledger.ClaimManualAsync(Task, trigger, "node-b", session.Id, SlotClaimer.NewRunId(trigger.Sequence), Cancel);
        Assert.Equal(ClaimStatus.AlreadyClaimed, again.Status);
    }

    [Fact]
    public async Task A_dropped_trigger_is_recorded_once_and_can_no_longer_be_claimed()
    {
        var trigger = await AddTriggerAsync("t-" + Guid.NewGuid().ToString("N")[..8]);
        var record = new RunRecord
        {
            Slot = 0,
            RunId = SlotClaimer.NewRunId(trigger.Sequence),
            Node = "node-a",
            State = RunState.Skipped,
            Reason = RunReasons.TriggerExpired(TimeSpan.FromHours(1)),
            StartedAt = DateTimeOffset.UtcNow,
            FinishedAt = DateTimeOffset.UtcNow,
            Attempt = 0,
            Trigger = trigger.Id,
            TriggerIndex = trigger.Sequence,
        };

        Assert.True(await Ledger.DropTriggerAsync(Task, trigger, record, Cancel));
        Assert.False(await Ledger.DropTriggerAsync(Task, trigger, record, Cancel));

        var entry = Assert.Single(await Ledger.ReadHistoryAsync(Task, Cancel));
        Assert.Equal((trigger.Id, RunState.Skipped, record.Reason), (entry.Trigger, entry.State, entry.Reason));
        var session = await OpenSessionAsync(NoLockDelay);
        var claim = await Ledger.ClaimManualAsync(Task, trigger, "node-b", session.Id, SlotClaimer.NewRunId(trigger.Sequence), Cancel);
        Assert.Equal(ClaimStatus.AlreadyClaimed, claim.Status);
    }

    [Fact]
    public async Task A_spec_is_read_as_stored_and_replaced_only_at_the_index_it_was_read_at()
    {
        Assert.Null(await Ledger.ReadSpecAsync(Task, Cancel));
        await PutSpecAsync(Task, "{\"schedule\":\"@every 1m\"}");

        var read = await Ledger.ReadSpecAsync(Task, Cancel);
        Assert.NotNull(read);
        Assert.Equal("{\"schedule\":\"@every 1m\"}", read.Json);
        Assert.True(read.ModifyIndex > 0);
        Assert.True(await Ledger.ReplaceSpecAsync(Task, "{\"schedule\":\"@every 2m\"}", read.ModifyIndex, Cancel));
        Assert.False(await Ledger.ReplaceSpecAsync(Task, "{\"schedule\":\"@every 3m\"}", read.ModifyIndex, Cancel)); // Stale.

        var replaced = await Ledger.ReadSpecAsync(Task, Cancel);
        Assert.Equal("{\"schedule\":\"@every 2m\"}", replaced!.Json);
        Assert.True(replaced.ModifyIndex > read.ModifyIndex);

        // Index 0: only where there is none.
        var other = new TaskId("ops", "other-" + Guid.NewGuid().ToString("N")[..8]);
        Assert.False(await Ledger.ReplaceSpecAsync(Task, "{}", 0, Cancel));
        Assert.True(await Ledger.ReplaceSpecAsync(other, "{\"schedule\":\"@hourly\"}", 0, Cancel));
        Assert.Equal("{\"schedule\":\"@hourly\"}", (await Ledger.ReadSpecAsync(other, Cancel))!.Json);
    }

    [Fact]
    public async Task A_task_is_located_where_the_spec_listing_and_its_state_entries_are()
    {
        await PutSpecAsync(Task, "{}");
        var places = Ledger.Locate(Task);

        var listed = (await Ledger.ListAsync(LedgerFolder.Tasks, QueryOptions.ConsistentRead, Cancel)).Value;
        Assert.Contains(listed, p => p.Key == places.Spec);
        Assert.StartsWith(places.TasksFolder, places.Spec, StringComparison.Ordinal);
        var trigger = await Ledger.RequestTriggerAsync(Task, new ControlRequest { Action = ControlAction.Trigger, Id = "t-1", RequestedAt = DateTimeOffset.UtcNow }, Cancel);
        Assert.Equal(places.Trigger("t-1"), trigger!.Key);

        var session = await OpenSessionAsync(NoLockDelay);
        await ClaimAndFinishAsync(session, Slot(1), 10);
        Assert.StartsWith(places.State, (await Ledger.ReadRunEntryAsync(Task, Cancel))!.Key, StringComparison.Ordinal);
        Assert.All(await Ledger.ListHistoryAsync(Task, Cancel), e => Assert.StartsWith(places.State, e.Key, StringComparison.Ordinal));

        // Any namespace's folder may be read here (a forbidden one throws).
        await Ledger.CheckSpecsReadableAsync(Task.Namespace, Cancel);
        await Ledger.CheckSpecsReadableAsync("empty-" + Guid.NewGuid().ToString("N")[..8], Cancel);
    }

    [Fact]
    public async Task The_run_entry_is_the_run_record_with_the_index_a_claim_fences_with()
    {
        Assert.Null(await Ledger.ReadRunEntryAsync(Task, Cancel));
        var session = await OpenSessionAsync(NoLockDelay);
        var claim = (await Ledger.ClaimAsync(Task, Slot(1), "node-a", session.Id, cancellationToken: Cancel)).Claim!;

        var running = await Ledger.ReadRunEntryAsync(Task, Cancel);
        Assert.Equal((claim.RunId, RunState.Running, claim.RecordIndex), (running!.Record!.RunId, running.Record.State, running.ModifyIndex));

        await Ledger.FinishAsync(claim, Final(claim, RunState.Failed), 10, CancellationToken.None, Cancel);
        var finished = await Ledger.ReadRunEntryAsync(Task, Cancel);
        Assert.Equal((claim.RunId, RunState.Failed), (finished!.Record!.RunId, finished.Record.State));
        Assert.Equal((await Ledger.ReadRunAsync(Task, Cancel)).ModifyIndex, finished.ModifyIndex);
    }

    [Fact]
    public async Task The_history_entries_are_listed_in_key_order_scheduled_slots_before_manual_runs()
    {
        var session = await OpenSessionAsync(NoLockDelay);
        await ClaimAndFinishAsync(session, Slot(2), 10);
        Assert.Equal(MarkStatus.Written, await Ledger.RecordMissedAsync(Task, Slot(3), "node-b", RunReasons.NotClaimedBeforeDeadline, 10, Cancel));
        var trigger = await AddTriggerAsync("t-" + Guid.NewGuid().ToString("N")[..8]);
        var manual = (await Ledger.ClaimManualAsync(Task, trigger, "node-a", session.Id, SlotClaimer.NewRunId(trigger.Sequence), Cancel)).Claim!;
        await Ledger.FinishAsync(manual, Final(manual, RunState.Succeeded), 10, CancellationToken.None, Cancel);

        var entries = await Ledger.ListHistoryAsync(Task, Cancel);

        Assert.Equal(entries.Select(e => e.Key).Order(StringComparer.Ordinal), entries.Select(e => e.Key));
        Assert.Equal([(RunState.Succeeded, (string?)null), (RunState.Missed, null), (RunState.Succeeded, trigger.Id)], entries.Select(e => (e.Record!.State, e.Record.Trigger)));
        Assert.Equal([Slot(2), Slot(3)], entries.Take(2).Select(e => e.Record!.Slot));
        Assert.Equal((await Ledger.ReadHistoryAsync(Task, Cancel)).Select(r => r.RunId).Order(StringComparer.Ordinal),
            entries.Select(e => e.Record!.RunId).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task A_task_has_run_state_once_a_slot_of_it_is_claimed_or_recorded_and_a_spec_alone_is_none()
    {
        var recorded = new TaskId("ops", "recorded-" + Guid.NewGuid().ToString("N")[..8]);
        await PutSpecAsync(Task, "{}");
        Assert.False(await Ledger.HasRunStateAsync(Task, Cancel));
        Assert.False(await Ledger.HasRunStateAsync(recorded, Cancel));

        var session = await OpenSessionAsync(NoLockDelay);
        Assert.Equal(ClaimStatus.Claimed, (await Ledger.ClaimAsync(Task, Slot(1), "node-a", session.Id, cancellationToken: Cancel)).Status);
        Assert.Equal(MarkStatus.Written, await Ledger.RecordSkippedAsync(recorded, Slot(1), "node-a", RunReasons.StillRunning, 0, Cancel));

        Assert.True(await Ledger.HasRunStateAsync(Task, Cancel));
        Assert.True(await Ledger.HasRunStateAsync(recorded, Cancel));
    }

    [Fact]
    public async Task A_tasks_pending_requests_are_its_own_triggers_and_stops_until_they_are_consumed()
    {
        var other = new TaskId("ops", "other-" + Guid.NewGuid().ToString("N")[..8]);
        await Ledger.PlaceControlAnchorAsync(Cancel);
        var trigger = await Ledger.RequestTriggerAsync(Task, new ControlRequest { Action = ControlAction.Trigger, Id = "t-1", RequestedAt = DateTimeOffset.UtcNow, RequestedBy = "cli@a" }, Cancel);
        Assert.True(await Ledger.RequestStopAsync(Task, StopRequest("run-1", "cli@b"), Cancel));
        Assert.NotNull(await Ledger.RequestTriggerAsync(other, new ControlRequest { Action = ControlAction.Trigger, Id = "t-2", RequestedAt = DateTimeOffset.UtcNow }, Cancel));

        var pending = await Ledger.ListControlRequestsAsync(Task, Cancel);

        Assert.Equal([(ControlAction.Stop, "run-1", "cli@b"), (ControlAction.Trigger, "t-1", "cli@a")],
            pending.Select(p => (p.Action, p.Id, p.Request!.RequestedBy)).OrderBy(p => p.Id, StringComparer.Ordinal));
        Assert.Equal(trigger!.CreateIndex, Assert.Single(pending, p => p.Action == ControlAction.Trigger).CreateIndex);
        Assert.Equal(await StopRequestIndexAsync("run-1"), Assert.Single(pending, p => p.Action == ControlAction.Stop).CreateIndex);

        var session = await OpenSessionAsync(NoLockDelay);
        Assert.Equal(ClaimStatus.Claimed, (await Ledger.ClaimManualAsync(Task, trigger, "node-a", session.Id, SlotClaimer.NewRunId(trigger.Sequence), Cancel)).Status);
        await Ledger.ClearStopAsync(Task, "run-1", Cancel);
        Assert.Empty(await Ledger.ListControlRequestsAsync(Task, Cancel));
        Assert.Equal("t-2", Assert.Single(await Ledger.ListControlRequestsAsync(other, Cancel)).Id);
    }

    [Fact]
    public async Task The_held_locks_are_the_tasks_whose_lock_a_live_session_holds_now()
    {
        var other = new TaskId("ops", "other-" + Guid.NewGuid().ToString("N")[..8]);
        Assert.Empty(await Ledger.ListHeldLocksAsync(Cancel));
        var a = await OpenSessionAsync(NoLockDelay);
        var b = await OpenSessionAsync(NoLockDelay);
        var claim = (await Ledger.ClaimAsync(Task, Slot(1), "node-a", a.Id, cancellationToken: Cancel)).Claim!;
        Assert.Equal(ClaimStatus.Claimed, (await Ledger.ClaimAsync(other, Slot(1), "node-b", b.Id, cancellationToken: Cancel)).Status);

        // In key order: "job-…" before "other-…".
        Assert.Equal([new HeldLock(Task, a.Id), new HeldLock(other, b.Id)], await Ledger.ListHeldLocksAsync(Cancel));

        await Ledger.FinishAsync(claim, Final(claim, RunState.Succeeded), 10, CancellationToken.None, Cancel);
        await EndSessionAsync(b);
        Assert.Empty(await Ledger.ListHeldLocksAsync(Cancel));
    }

    private static ControlRequest StopRequest(string runId, string node) => new()
    {
        Action = ControlAction.Stop,
        Id = Guid.NewGuid().ToString("N"),
        RequestedAt = DateTimeOffset.UtcNow,
        RequestedBy = node,
        RunId = runId,
    };

    private async Task ClaimAndFinishAsync(ILedgerSession session, long slot, int historyLimit)
    {
        var claimed = await Ledger.ClaimAsync(Task, slot, "node-a", session.Id, cancellationToken: Cancel);
        Assert.Equal(ClaimStatus.Claimed, claimed.Status);
        var finish = await Ledger.FinishAsync(claimed.Claim!, Final(claimed.Claim!, RunState.Succeeded), historyLimit, CancellationToken.None, Cancel);
        Assert.Equal(FinishStatus.Recorded, finish.Status);
    }

    private static RunRecord Final(SlotClaim claim, RunState state) => claim.Record with
    {
        State = state,
        Fence = claim.Fence.AsLong,
        FinishedAt = DateTimeOffset.UtcNow,
        ExitCode = state == RunState.Succeeded ? 0 : 1,
    };
}

/// <summary>The ledger cases against the Consul ledger, on a real agent, as <c>dtask run</c> uses it (one claim at a time).</summary>
public sealed class ConsulTaskLedgerConformanceTests(ConsulFixture consul) : ConsulTaskLedgerConformance(consul, batchClaims: false);

/// <summary>The ledger cases against the Consul ledger as the executor uses it: claims due at once share requests.</summary>
public sealed class BatchedConsulTaskLedgerConformanceTests(ConsulFixture consul) : ConsulTaskLedgerConformance(consul, batchClaims: true);

/// <summary>The ledger cases against the Consul ledger, on a real agent.</summary>
public abstract class ConsulTaskLedgerConformance : TaskLedgerConformance
{
    private readonly ConsulClient client;
    private readonly List<SessionRenewal> sessions = [];
    private readonly KvLayout layout = new(TestKvPrefix.New("dtask-test/"));

    protected ConsulTaskLedgerConformance(ConsulFixture consul, bool batchClaims)
    {
        ArgumentNullException.ThrowIfNull(consul);
        client = consul.NewClient();
        Ledger = new ConsulTaskLedger(client, layout, batchClaims: batchClaims);
    }

    protected override ITaskLedger Ledger { get; }

    protected override async Task<ILedgerSession> OpenSessionAsync(TimeSpan lockDelay)
    {
        var session = await SessionRenewal.CreateAsync(client, new ExecutorSessionOptions { Ttl = TimeSpan.FromSeconds(30), LockDelay = lockDelay },
            cancellationToken: Cancel);
        sessions.Add(session);
        return session;
    }

    protected override async Task<ManualTrigger> AddTriggerAsync(string id)
    {
        var key = layout.TriggerKey(Task.Namespace, Task.Name, id);
        var request = new ControlRequest { Action = ControlAction.Trigger, Id = id, RequestedAt = DateTimeOffset.UtcNow, RequestedBy = "test" };
        Assert.True((await client.Kv.PutAsync(key, Encoding.UTF8.GetBytes(StateJson.Serialize(request)), new KvPutOptions { Cas = 0 }, Cancel)).Value);
        var pair = (await client.Kv.GetAsync(key, QueryOptions.ConsistentRead, Cancel)).Value!;
        return new ManualTrigger(id, key, pair.CreateIndex);
    }

    protected override async Task<ulong> StopRequestIndexAsync(string runId) =>
        (await client.Kv.GetAsync(layout.StopKey(Task.Namespace, Task.Name, runId), QueryOptions.ConsistentRead, Cancel)).Value?.ModifyIndex ?? 0;

    protected override KvLayout Layout => layout;

    protected override async Task PutSpecAsync(TaskId task, string json) =>
        Assert.True((await client.Kv.PutAsync(layout.TaskKey(task.Namespace, task.Name), Encoding.UTF8.GetBytes(json), cancellationToken: Cancel)).Value);

    protected override async Task<SpecRefusal?> ReadSpecRefusalAsync(TaskId task) =>
        (await client.Kv.GetAsync(layout.SpecRefusalKey(task.Namespace, task.Name), QueryOptions.ConsistentRead, Cancel)).Value is { } pair
            ? StateJson.Deserialize<SpecRefusal>(pair.ValueAsString()) : null;

    /// <summary>Destroys the session: Consul releases its locks, with its lock-delay.</summary>
    protected override async Task EndSessionAsync(ILedgerSession session) => await ((SessionRenewal)session).DisposeAsync();

    public override async ValueTask DisposeAsync()
    {
        foreach (var session in sessions)
        {
            await session.DisposeAsync();
        }

        await ((ConsulTaskLedger)Ledger).DisposeAsync();
        client.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>The ledger cases against the in-memory ledger.</summary>
public sealed class InMemoryTaskLedgerConformanceTests : TaskLedgerConformance
{
    private readonly InMemoryTaskLedger ledger = new();

    protected override ITaskLedger Ledger => ledger;

    protected override Task<ILedgerSession> OpenSessionAsync(TimeSpan lockDelay) => System.Threading.Tasks.Task.FromResult<ILedgerSession>(ledger.OpenSession(lockDelay));

    protected override Task<ManualTrigger> AddTriggerAsync(string id) => System.Threading.Tasks.Task.FromResult(ledger.AddTrigger(Task, id));

    protected override Task<ulong> StopRequestIndexAsync(string runId) => System.Threading.Tasks.Task.FromResult(ledger.StopRequestIndex(Task, runId));

    protected override KvLayout Layout => ledger.Layout;

    protected override Task PutSpecAsync(TaskId task, string json)
    {
        ledger.PutSpec(task, json);
        return System.Threading.Tasks.Task.CompletedTask;
    }

    protected override Task<SpecRefusal?> ReadSpecRefusalAsync(TaskId task) => System.Threading.Tasks.Task.FromResult(ledger.SpecRefusal(task));

    protected override Task EndSessionAsync(ILedgerSession session)
    {
        ledger.EndSession((InMemoryLedgerSession)session);
        return System.Threading.Tasks.Task.CompletedTask;
    }

    public override ValueTask DisposeAsync()
    {
        GC.SuppressFinalize(this);
        return ValueTask.CompletedTask;
    }
}
