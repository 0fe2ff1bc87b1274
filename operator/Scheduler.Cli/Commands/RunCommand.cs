using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;
using Dtask.Consul;
using Dtask.Consul.Configuration;
using Dtask.Consul.Errors;
using Dtask.Consul.Locking;
using Dtask.Core.Durations;
using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Executor.Claims;
using Dtask.Executor.Firing;
using Dtask.Executor.Ledger;
using Dtask.Executor.Logging;
using Dtask.Executor.Notifications;
using Dtask.Executor.Notifications.DataDog;
using Dtask.Executor.Processes;
using Serilog;

namespace Dtask.Cli.Commands;

/// <summary>
/// <c>dtask run --task ID --period SECONDS [--slack] [--datadog] [--prefix dtask/] [--node NAME] [--timeout DUR]
/// [--consul ADDR] -- CMD ARGS...</c>: runs CMD at most once per PERIOD seconds across every machine that calls it,
/// never twice at once. The slot is <c>floor(now / PERIOD) · PERIOD</c> (as for <c>every</c>); it is claimed with the
/// executor's claim protocol and recorded under <c>state/NS/NAME/</c> like any task's runs. CMD dies with this process
/// whatever kills it (a child watchdog, started with CMD), and is stopped before Consul may free the lock.
/// </summary>
/// <remarks>
/// Exit codes: the command's own when it ran (128 + N when signal N ended it; 127 when it could not be started);
/// 0 when another machine already ran or is running this period's slot (said on stderr, with the node);
/// 64 (EX_USAGE) for a bad command line; 69 (EX_UNAVAILABLE) when Consul cannot be reached or fails;
/// 75 (EX_TEMPFAIL) when the slot could not be claimed before the period ended (lock-delay of a dead holder), or when
/// this period's slot did not run and will not: recorded <c>missed</c>, or claimed by a call whose session ended before it
/// recorded an outcome (it may have run: at most one run per slot, so it is not run again). A claim sent but not
/// confirmed (its answer lost, Consul unreachable) is read back until the period ends: run when it is this call's,
/// otherwise released recorded <c>missed</c> (<c>claim-unconfirmed</c>) and 69. Within the session TTL after a call gave
/// up that way with Consul unreachable, its claim still looks held by a live session: 0 "is running".
/// 77 (EX_NOPERM) when Consul denies permission; 78 (EX_CONFIG) for unusable CONSUL_* or notification variables.
/// </remarks>
internal static class RunCommand
{
    public const string Name = "run";
    public const int UsageExitCode = 64;
    public const int UnavailableExitCode = 69;
    public const int TemporaryFailureExitCode = 75;
    public const int NoPermissionExitCode = 77;
    public const int ConfigurationExitCode = 78;
    public const int CannotStartExitCode = 127;

    public static Command Create()
    {
        var task = new Option<string>("--task", "-t") { Description = "The task: NAME or NAMESPACE/NAME (namespace 'default' when omitted).", Required = true };
        var period = new Option<long>("--period", "-p") { Description = "Run at most once per this many seconds (slots are multiples of it since the Unix epoch).", Required = true };
        var slack = new Option<bool>("--slack") { Description = "Send Slack messages (webhook from SLACK_WEBHOOK; events from DTASK_SLACK_ON)." };
        var datadog = new Option<bool>("--datadog") { Description = "Send DataDog metrics (DogStatsD: DD_AGENT_HOST/DD_DOGSTATSD_PORT; or the API with DD_API_KEY/DATADOG_API_KEY)." };
        var prefix = PrefixOption();
        var node = new Option<string?>("--node") { Description = "This machine's name in the records (default: the host name)." };
        var timeout = new Option<string?>("--timeout") { Description = "Stop the command's process group after this long (a duration such as 30s, 10m, 1h)." };
        var grace = new Option<string?>("--grace") { Description = "Between SIGTERM and SIGKILL when the command is stopped (default 10s); the session TTL is 15s or 2 × (grace + 1s), whichever is longer." };
        var consul = ConsulOption();
        var command = new Argument<string[]>("command") { Description = "The command and its arguments (after --).", Arity = ArgumentArity.OneOrMore };
        var run = new Command(Name, "Run a command at most once per period across every machine that calls this, never twice at once (the original cron script, claimed through Consul). Exit: the command's code; 0 when another machine ran it this period; 64 usage; 69 Consul unreachable; 77 permission denied.")
        {
            task, period, slack, datadog, prefix, node, timeout, grace, consul, command,
        };
        run.SetAction(async (parseResult, cancellationToken) =>
        {
            var error = parseResult.InvocationConfiguration.Error;
            var arguments = new RunArguments(
                parseResult.GetRequiredValue(task), parseResult.GetValue(period), parseResult.GetValue(slack), parseResult.GetValue(datadog),
                parseResult.GetValue(prefix) ?? KvLayout.DefaultPrefix, parseResult.GetValue(node), parseResult.GetValue(timeout),
                parseResult.GetValue(grace), parseResult.GetValue(consul), parseResult.GetValue(command) ?? []);
            return await RunAsync(arguments, error, cancellationToken).ConfigureAwait(false);
        });
        return run;
    }

    /// <summary>True when the parse result is for this command (its parse errors exit with <see cref="UsageExitCode"/>).</summary>
    public static bool Owns(ParseResult parseResult) => parseResult.CommandResult.Command.Name == Name;

    internal static Option<string?> PrefixOption() => new("--prefix") { Description = $"The KV prefix of dtask's keys (default {KvLayout.DefaultPrefix})." };

    internal static Option<string?> ConsulOption() => new("--consul") { Description = "The Consul agent (host:port or URL); default from CONSUL_HTTP_ADDR, CONSUL_HOST, else 127.0.0.1:8500." };

    /// <summary>The client options: the standard CONSUL_* variables, with <paramref name="address"/> in place of CONSUL_HTTP_ADDR when given.</summary>
    internal static ConsulClientOptions ConsulOptions(string? address) =>
        ConsulEnvironment.Read(name => name == ConsulEnvironment.HttpAddr && !string.IsNullOrEmpty(address) ? address : Environment.GetEnvironmentVariable(name));

    private sealed record RunArguments(string Task, long Period, bool Slack, bool DataDog, string Prefix, string? Node, string? Timeout, string? Grace, string? Consul, string[] Command);

    private static async Task<int> RunAsync(RunArguments arguments, TextWriter error, CancellationToken cancellationToken)
    {
        if (!TaskId.TryParse(arguments.Task, out var task, out var problem))
        {
            return Usage(error, $"--task {problem}");
        }

        if (arguments.Period < 1)
        {
            return Usage(error, $"--period {arguments.Period.ToString(CultureInfo.InvariantCulture)} must be a whole number of seconds, at least 1");
        }

        if (arguments.Command.Length == 0 || string.IsNullOrEmpty(arguments.Command[0]))
        {
            return Usage(error, "no command given; write it after --, e.g. dtask run --task backup --period 3600 -- /usr/bin/backup");
        }

        if (!TryDuration(arguments.Timeout, "--timeout", error, out var timeout) || !TryDuration(arguments.Grace, "--grace", error, out var grace))
        {
            return UsageExitCode;
        }

        var node = string.IsNullOrWhiteSpace(arguments.Node) ? Environment.MachineName.ToLowerInvariant() : arguments.Node;
        var time = TimeProvider.System;
        var now = time.GetUtcNow().ToUnixTimeSeconds();
        var slot = now - (((now % arguments.Period) + arguments.Period) % arguments.Period);
        var deadline = DateTimeOffset.FromUnixTimeSeconds(slot + arguments.Period);
        var variables = EnvironmentSettings.ProcessVariables();

        ConsulClientOptions consulOptions;
        NotificationOptions notifications;
        LoggingOptions logging;
        try
        {
            consulOptions = ConsulOptions(arguments.Consul);
            notifications = Notifications(NotificationOptions.FromEnvironment(new EnvironmentSettings(variables)), arguments.Slack, arguments.DataDog);
            logging = LoggingOptions.FromEnvironment(variables);
        }
        catch (Exception e) when (e is ConsulConfigurationException or FormatException)
        {
            error.WriteLine($"dtask run: {e.Message}");
            return ConfigurationExitCode;
        }

        if (arguments.Slack && !notifications.Slack.Enabled)
        {
            error.WriteLine($"dtask run: --slack given but {Executor.Notifications.Slack.SlackOptions.WebhookVariable} is not set; no Slack messages will be sent");
        }

        var layout = new KvLayout(arguments.Prefix);
        using var client = new ConsulClient(consulOptions, time);
        var ledger = new ConsulTaskLedger(client, layout, time);
        var store = ledger.Store;
        try
        {
            // Most callers of a busy period find it taken: answer them with one read and no write.
            var stored = await ledger.ReadRunAsync(task!, cancellationToken).ConfigureAwait(false);
            if (stored.Record is { } current && current.Slot >= slot)
            {
                return await TakenAsync(error, store, task!, slot, current, cancellationToken).ConfigureAwait(false);
            }

            await using var logger = ExecutorLogging.Configure(logging, error).CreateLogger();
            await using var notifier = RunNotifiers.Create(notifications, logger, time);
            // The command dies with this process, whatever kills it; and it is stopped before Consul may free the lock:
            // the session counts as lost (and the watchdog's lease runs out) the grace plus the kill wait before its TTL.
            var termination = grace ?? TimeSpan.FromSeconds(10);
            using var watchdog = ChildWatchdog.Deferred(termination);
            watchdog.Restarted += what => logger.Warning("the child watchdog {What:l}", what);
            var stopBudget = termination + ChildWatchdog.KillWait;
            var sessionOptions = new ExecutorSessionOptions { Name = $"dtask run {node}", LostMargin = stopBudget, DeadlineObserver = watchdog.Lease };
            var ttl = Max(sessionOptions.Ttl, 2 * stopBudget);
            sessionOptions = sessionOptions with { Ttl = ttl, RenewInterval = (ttl - stopBudget) / 3 };
            await using var session = await SessionRenewal.CreateAsync(client, sessionOptions, time, cancellationToken).ConfigureAwait(false);
            using var stop = new StopRequest();
            using var onTerm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Stop(StopReason.Shutdown("SIGTERM")); });
            using var onInt = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.Stop(StopReason.Shutdown("SIGINT")); });
            var runner = new ChildRunner(new ChildRunnerOptions { TerminationGrace = termination, Watchdog = watchdog }, time);
            var firing = new SlotFiring(ledger, session, node, notifier, logger, runner, time);
            var request = new FireRequest(task!, slot, ChildCommand.Exec(arguments.Command) with { Timeout = timeout }, deadline)
            {
                Concurrency = ConcurrencyPolicy.Forbid,
                RunId = SlotClaimer.NewRunId(slot), // Every try claims with it: a stored claim whose answer was lost is recognised.
            };
            var result = await FireAsync(firing, request, stop, ledger, error, time, cancellationToken).ConfigureAwait(false);
            if (result is null)
            {
                return UnavailableExitCode;
            }

            return result.Status switch
            {
                FireStatus.Ran => Ran(error, result),
                FireStatus.AlreadyClaimed => await TakenAsync(error, store, task!, slot, result.Current, cancellationToken).ConfigureAwait(false),
                FireStatus.Busy => Busy(error, task!, slot, result),
                _ => NotClaimed(error, task!, slot, result),
            };
        }
        catch (ConsulPermissionDeniedException e)
        {
            error.WriteLine($"dtask run: Consul denied permission: {e.Message} (the token needs key write on '{layout.Prefix}' and session write)");
            return NoPermissionExitCode;
        }
        catch (ConsulException e)
        {
            error.WriteLine($"dtask run: cannot use Consul at {consulOptions.Address}: {e.Message}");
            return UnavailableExitCode;
        }
    }

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    private static NotificationOptions Notifications(NotificationOptions options, bool slack, bool datadog) => options with
    {
        Slack = slack ? options.Slack : options.Slack with { Webhook = null },
        DataDog = datadog ? options.DataDog : options.DataDog with { Mode = DataDogMode.Off },
    };

    private static int Ran(TextWriter error, FireResult result)
    {
        var outcome = result.Outcome!;
        if (outcome.StartError is { } startError)
        {
            error.WriteLine($"dtask run: {startError}");
            return CannotStartExitCode;
        }

        if (result.Record?.State == RunState.Lost)
        {
            error.WriteLine($"dtask run: the lock was lost while the command ran; it was stopped ({result.Record.Reason})");
        }
        else if (outcome.TimedOut)
        {
            error.WriteLine($"dtask run: the command ran past its timeout and was stopped");
        }

        if (result.Finish is { Status: FinishStatus.Unrecorded or FinishStatus.Refused } finish)
        {
            error.WriteLine($"dtask run: the run could not be recorded in Consul ({finish.Problem}); the next claimer records it abandoned");
        }

        return outcome.ExitCode ?? 1;
    }

    /// <summary>
    /// Fires the slot. When the claim was sent but its answer was lost and could not be read back
    /// (<see cref="ClaimUnconfirmedException"/>), tries again (same run id: a stored claim is recognised as this one and
    /// run) until the period ends or a signal asks to stop; then releases a stored claim recorded <c>missed</c>
    /// (<c>claim-unconfirmed</c>) when Consul answers, says so, and answers null (exit 69). The session is destroyed on the
    /// way out, which frees the lock in any case.
    /// </summary>
    private static async Task<FireResult?> FireAsync(SlotFiring firing, FireRequest request, StopRequest stop, ConsulTaskLedger ledger, TextWriter error, TimeProvider time,
        CancellationToken cancellationToken)
    {
        var backoff = new Backoff(TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(5));
        ClaimUnconfirmedException? unconfirmed = null;
        while (true)
        {
            try
            {
                return await firing.FireAsync(request, stop, cancellationToken).ConfigureAwait(false);
            }
            catch (ClaimUnconfirmedException e)
            {
                if (unconfirmed is null)
                {
                    error.WriteLine($"dtask run: {request.Task}: {e.Message}; reading it back until the period ends");
                }

                unconfirmed = e;
            }
            catch (ConsulException) when (unconfirmed is not null && !cancellationToken.IsCancellationRequested)
            {
                // Still unreachable: the claim stays unconfirmed.
            }

            if (time.GetUtcNow() + backoff.Current >= request.Deadline || stop.IsRequested || cancellationToken.IsCancellationRequested)
            {
                break;
            }

            try
            {
                await Task.Delay(backoff.Next(), time, stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break; // A signal: give up.
            }
        }

        try
        {
            using var timeout = new CancellationTokenSource(ledger.Store.Client.Options.RequestTimeout);
            var released = await ledger.ReleaseUnconfirmedAsync(request.Task, request.Slot, unconfirmed!.RunId, unconfirmed.SessionId, timeout.Token)
                .ConfigureAwait(false);
            error.WriteLine(released is null
                ? $"dtask run: {request.Task}: slot {request.Slot.ToString(CultureInfo.InvariantCulture)} was not claimed here; the command did not run"
                : $"dtask run: {request.Task}: slot {request.Slot.ToString(CultureInfo.InvariantCulture)} was claimed but could not be confirmed in time; "
                    + $"recorded missed ({SlotClaimer.ClaimUnconfirmedReason}), the command did not run");
        }
        catch (Exception e) when (e is ConsulException or OperationCanceledException)
        {
            error.WriteLine($"dtask run: {request.Task}: slot {request.Slot.ToString(CultureInfo.InvariantCulture)}: the claim could not be confirmed nor released "
                + "(Consul unreachable); the command did not run. The lock frees when this run's session ends (within twice its TTL); a later "
                + "'dtask run' of this period then finds the claim without its session and does not run it again (exit 75)");
        }

        return null;
    }

    /// <summary>
    /// The period's slot is claimed or recorded already. Exit 0 only when it ran, or is running under a live session, on
    /// some node (or was skipped by policy); 75 when it did not run here and nothing says it ran anywhere: recorded
    /// <c>missed</c>, or claimed by a holder whose session ended before it recorded an outcome (it may or may not have run:
    /// it is not run again, at most one run per slot).
    /// </summary>
    private static async Task<int> TakenAsync(TextWriter error, RunStateStore store, TaskId task, long slot, RunRecord? current, CancellationToken cancellationToken)
    {
        if (current is { Slot: var at, State: RunState.Missed } missed && at == slot)
        {
            error.WriteLine($"dtask run: {task}: this period's slot {slot.ToString(CultureInfo.InvariantCulture)} did not run: recorded missed ({missed.Reason}) "
                + $"by node {missed.Node}; not running it here");
            return TemporaryFailureExitCode;
        }

        if (current is { IsRunning: true } running && running.Slot == slot
            && (await store.ReadLockAsync(task, cancellationToken).ConfigureAwait(false))?.Session is var holder && (holder is null || holder != running.Session))
        {
            // The lock is read after the record: the run may have finished in between (its finish frees the lock and
            // makes the record final in one transaction). The record read again decides.
            var again = (await store.ReadRunAsync(task, cancellationToken).ConfigureAwait(false)).Record;
            if (again is null || again.RunId != running.RunId || !again.IsRunning)
            {
                return await TakenAsync(error, store, task, slot, again, cancellationToken).ConfigureAwait(false);
            }

            error.WriteLine($"dtask run: {task}: this period's slot {slot.ToString(CultureInfo.InvariantCulture)} was claimed by node {running.Node}, whose session "
                + "ended before it recorded an outcome: it may or may not have run; not running it again");
            return TemporaryFailureExitCode;
        }

        return Taken(error, task, slot, current);
    }

    private static int Taken(TextWriter error, TaskId task, long slot, RunRecord? current)
    {
        var what = current is null ? "was claimed by another node"
            : current.Slot > slot ? $"is past: slot {current.Slot} was claimed since, on node {current.Node}"
            : current.IsRunning ? $"is running on node {current.Node}"
            : $"already ran on node {current.Node} ({StateName(current.State)})";
        error.WriteLine($"dtask run: {task}: this period's slot {slot.ToString(CultureInfo.InvariantCulture)} {what}; not running it here");
        return Program.Success;
    }

    private static int Busy(TextWriter error, TaskId task, long slot, FireResult result)
    {
        var holder = result.Current is { } c ? $"slot {c.Slot.ToString(CultureInfo.InvariantCulture)} is still running on node {c.Node}" : "a previous run still holds the lock";
        error.WriteLine($"dtask run: {task}: {holder}; slot {slot.ToString(CultureInfo.InvariantCulture)} recorded as skipped (still-running)");
        return Program.Success;
    }

    private static int NotClaimed(TextWriter error, TaskId task, long slot, FireResult result)
    {
        error.WriteLine($"dtask run: {task}: could not claim slot {slot.ToString(CultureInfo.InvariantCulture)} before the period ended: {result.Detail}");
        return TemporaryFailureExitCode;
    }

    private static string StateName(RunState state) => System.Text.Json.JsonSerializer.Serialize(state).Trim('"');

    private static bool TryDuration(string? text, string option, TextWriter error, out TimeSpan? value)
    {
        value = null;
        if (text is null)
        {
            return true;
        }

        try
        {
            value = GoDuration.Parse(text);
        }
        catch (FormatException)
        {
            error.WriteLine($"dtask run: {option} '{text}' is not a duration; write one such as 30s, 10m or 1h30m");
            return false;
        }

        if (value <= TimeSpan.Zero)
        {
            error.WriteLine($"dtask run: {option} '{text}' must be positive");
            return false;
        }

        return true;
    }

    private static int Usage(TextWriter error, string message)
    {
        error.WriteLine($"dtask run: {message}");
        error.WriteLine("Run 'dtask run --help' for usage.");
        return UsageExitCode;
    }
}
