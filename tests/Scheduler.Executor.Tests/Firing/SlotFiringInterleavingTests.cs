using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Executor.Claims;
using Dtask.Executor.Firing;
using Dtask.Executor.Processes;
using Dtask.Executor.Tests.Support;
using Dtask.Testing;
using Dtask.Testing.Ledger;
using Microsoft.Extensions.Time.Testing;
using Serilog.Core;

namespace Dtask.Executor.Tests.Firing;

/// <summary>
/// Interleavings of one slot's firing, driven step by step in process: the ledger is the in-memory one (held to the
/// Consul ledger by the ledger conformance tests), the clock a fake one, the child a real process writing its own
/// witness lines.
/// </summary>
public sealed class SlotFiringInterleavingTests : IDisposable
{
    private static readonly long Slot = 1_900_000_000;
    private readonly TaskId task = new("ops", "job-" + Guid.NewGuid().ToString("N")[..8]);
    private readonly FakeTimeProvider time = new(DateTimeOffset.FromUnixTimeSeconds(Slot));
    private readonly InMemoryTaskLedger ledger;
    private readonly TempDirectory directory = new();
    private readonly EventLog events = new();

    public SlotFiringInterleavingTests() => ledger = new InMemoryTaskLedger(time);

    private string Witness => Path.Combine(directory.Path, "witness");

    [Fact]
    public async Task A_claim_whose_answer_was_lost_is_read_back_as_ours_on_the_next_try_and_runs_once()
    {
        using var session = ledger.OpenSession();
        var firing = Firing(session);
        var request = Request($"echo ran >> '{Witness}'") with { RunId = SlotClaimer.NewRunId(Slot) };
        ledger.LoseNextClaimAnswer();

        var unconfirmed = await Assert.ThrowsAsync<ClaimUnconfirmedException>(() => firing.FireAsync(request, cancellationToken: TestContext.Current.CancellationToken));

        // The claim is stored, held by this session, and nothing ran.
        Assert.Equal((request.RunId, session.Id), (unconfirmed.RunId, unconfirmed.SessionId));
        var held = (await ledger.ReadRunAsync(task, TestContext.Current.CancellationToken)).Record!;
        Assert.Equal((request.RunId, RunState.Running), (held.RunId, held.State));
        Assert.Equal(session.Id, ledger.LockHolder(task));
        Assert.False(File.Exists(Witness));

        var result = await firing.FireAsync(request, cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal(FireStatus.Ran, result.Status);
        Assert.Equal((request.RunId, RunState.Succeeded), (result.Record!.RunId, result.Record.State));
        Assert.Equal(["ran"], await File.ReadAllLinesAsync(Witness, TestContext.Current.CancellationToken));
        var entry = Assert.Single(await ledger.ReadHistoryAsync(task, TestContext.Current.CancellationToken));
        Assert.Equal((Slot, request.RunId, RunState.Succeeded), (entry.Slot, entry.RunId, entry.State));
        Assert.Null(ledger.LockHolder(task));
    }

    [Fact]
    public async Task A_holder_whose_session_is_lost_while_its_child_runs_stops_it_and_records_the_run_lost()
    {
        using var session = ledger.OpenSession(TimeSpan.FromSeconds(15));
        var firing = Firing(session);
        var fire = firing.FireAsync(Request($"echo started >> '{Witness}'; sleep 60; echo finished >> '{Witness}'"),
            cancellationToken: TestContext.Current.CancellationToken);
        Assert.True(await Eventually.TrueAsync(() => File.Exists(Witness), TimeSpan.FromSeconds(20)), "the child never started");

        ledger.EndSession(session, "the session was invalidated by the test");
        var result = await fire.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);

        Assert.Equal(FireStatus.Ran, result.Status);
        Assert.Equal(RunState.Lost, result.Record!.State);
        Assert.StartsWith("session-lost", result.Record.Reason, StringComparison.Ordinal);
        Assert.Equal(["started"], await File.ReadAllLinesAsync(Witness, TestContext.Current.CancellationToken)); // Stopped, not finished.
        Assert.Equal(FinishStatus.LockLost, result.Finish!.Status);
        var entry = Assert.Single(await ledger.ReadHistoryAsync(task, TestContext.Current.CancellationToken));
        Assert.Equal((RunState.Lost, result.Record.Reason), (entry.State, entry.Reason));
        Assert.Contains($"lost {Slot}", events.Events);
    }

    [Fact]
    public async Task A_claimant_paused_past_its_sessions_renewal_deadline_between_the_claim_and_the_start_starts_no_child()
    {
        // The claim commits; then the executor is stopped (SIGSTOP) for longer than its session's renewal deadline, and
        // resumes before its renewal loop or lock watch has run: another node may hold the lock by now.
        using var session = ledger.OpenSession();
        var firing = Firing(session);
        ledger.AfterNextClaim(session.PassDeadline);

        var result = await firing.FireAsync(Request($"echo ran >> '{Witness}'"), cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal(FireStatus.Ran, result.Status);
        Assert.Equal(RunState.Lost, result.Record!.State);
        Assert.StartsWith("session-lost: the lease ran out before the child started", result.Record.Reason, StringComparison.Ordinal);
        Assert.Null(result.Record.ExitCode);
        Assert.False(File.Exists(Witness), "a child started on a lease that had run out");
    }

    public void Dispose() => directory.Dispose();

    private SlotFiring Firing(InMemoryLedgerSession session) =>
        new(ledger, session, "node-a", events, Logger.None, new ChildRunner(new ChildRunnerOptions { TerminationGrace = TimeSpan.FromSeconds(2) }), time);

    private FireRequest Request(string script) => new(task, Slot, ChildCommand.Shell(script), time.GetUtcNow() + TimeSpan.FromHours(1));
}
