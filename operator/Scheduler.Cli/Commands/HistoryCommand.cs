using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Dtask.Consul;
using Dtask.Consul.Configuration;
using Dtask.Consul.Errors;
using Dtask.Core.Durations;
using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Executor.Ledger;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Dtask.Cli.Commands;

/// <summary>
/// <c>dtask history NS/NAME [--limit N] [-o table|json] [--prefix dtask/] [--consul ADDR]</c>: the task's run records,
/// newest first: the current run record while it runs (or when its slot has no history entry yet), then
/// <c>history/*</c>. <c>-o json</c> prints a JSON array of exactly the stored <see cref="RunRecord"/>s.
/// Exit 1 for an unknown task or when Consul cannot be read.
/// </summary>
internal static class HistoryCommand
{
    private const int DefaultLimit = 20;

    public static Command Create()
    {
        var task = new Argument<string>("task") { Description = "The task: NAMESPACE/NAME, or NAME in namespace 'default'." };
        var limit = new Option<int>("--limit", "-n") { Description = $"How many records to show (default {DefaultLimit}).", DefaultValueFactory = _ => DefaultLimit };
        var format = new Option<string>("--output", "-o") { Description = "table or json.", DefaultValueFactory = _ => "table" };
        format.AcceptOnlyFromAmong("table", "json");
        var prefix = RunCommand.PrefixOption();
        var consul = RunCommand.ConsulOption();
        var command = new Command("history", "Show a task's runs, newest first: slot, state, node, attempt, start, duration, exit code, reason.")
        {
            task, limit, format, prefix, consul,
        };
        command.SetAction(async (parseResult, cancellationToken) =>
        {
            var output = parseResult.InvocationConfiguration.Output;
            var error = parseResult.InvocationConfiguration.Error;
            return await RunAsync(parseResult.GetRequiredValue(task), parseResult.GetValue(limit), parseResult.GetValue(format) ?? "table",
                parseResult.GetValue(prefix) ?? KvLayout.DefaultPrefix, parseResult.GetValue(consul), output, error, cancellationToken).ConfigureAwait(false);
        });
        return command;
    }

    private static async Task<int> RunAsync(string taskText, int limit, string format, string prefix, string? consul, TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        if (!TaskId.TryParse(taskText, out var task, out var problem))
        {
            error.WriteLine($"dtask history: {problem}");
            return Program.UsageError;
        }

        if (limit < 1)
        {
            error.WriteLine($"dtask history: --limit {limit.ToString(CultureInfo.InvariantCulture)} must be at least 1");
            return Program.UsageError;
        }

        ConsulClientOptions options;
        try
        {
            options = RunCommand.ConsulOptions(consul);
        }
        catch (ConsulConfigurationException e)
        {
            error.WriteLine($"dtask history: {e.Message}");
            return Program.Failure;
        }

        using var client = new ConsulClient(options);
        await using var ledger = new ConsulTaskLedger(client, new KvLayout(prefix));
        List<RunRecord> records;
        try
        {
            records = await ReadAsync(ledger, task!, error, cancellationToken).ConfigureAwait(false) ?? [];
            if (records.Count == 0 && !await KnownAsync(ledger, task!, cancellationToken).ConfigureAwait(false))
            {
                var places = ledger.Locate(task!);
                error.WriteLine($"dtask history: task {task} not found (no spec at '{places.Spec}' and no runs under '{places.State}')");
                return Program.Failure;
            }
        }
        catch (ConsulPermissionDeniedException e)
        {
            error.WriteLine($"dtask history: permission denied: {e.Message}");
            return RunCommand.NoPermissionExitCode;
        }
        catch (ConsulException e)
        {
            error.WriteLine($"dtask history: cannot read Consul at {options.Address}: {e.Message}");
            return Program.Failure;
        }

        var shown = records.Take(limit).ToList();
        if (format == "json")
        {
            output.WriteLine("[" + string.Join(",", shown.Select(StateJson.Serialize)) + "]");
        }
        else
        {
            WriteTable(output, shown);
        }

        return Program.Success;
    }

    /// <summary>The current record (while running, or when history lacks its slot) and the history entries, newest first.</summary>
    /// <remarks>A key that holds no run record (garbage) is left out with a warning on <paramref name="error"/>.</remarks>
    private static async Task<List<RunRecord>?> ReadAsync(ConsulTaskLedger ledger, TaskId task, TextWriter error, CancellationToken cancellationToken)
    {
        var run = await ledger.ReadRunEntryAsync(task, cancellationToken).ConfigureAwait(false);
        var entries = await ledger.ListHistoryAsync(task, cancellationToken).ConfigureAwait(false);
        var history = new List<RunRecord>();
        foreach (var entry in entries)
        {
            if (entry.Record is { } decoded)
            {
                history.Add(decoded);
            }
            else
            {
                error.WriteLine($"dtask history: warning: '{entry.Key}' holds no run record; skipped");
            }
        }

        if (run is { Record: null })
        {
            error.WriteLine($"dtask history: warning: '{run.Key}' holds no run record; skipped");
        }

        history.Sort((a, b) => b.OrderKey.CompareTo(a.OrderKey));
        var records = new List<RunRecord>(history);
        // A manual run keeps the slot of the record before it: it is matched by its run id, a scheduled run by its slot.
        static bool Same(RunRecord a, RunRecord b) => a.IsManual || b.IsManual ? a.RunId == b.RunId : a.Slot == b.Slot;
        if (run?.Record is { } current
            && (current.IsRunning || !history.Any(h => Same(h, current))))
        {
            // While a claim runs, its fence is the record's ModifyIndex (the record is written before the index is known).
            var withFence = current.IsRunning && current.Fence == 0 ? current with { Fence = checked((long)run.ModifyIndex) } : current;
            records.RemoveAll(r => Same(r, current) && current.IsRunning);
            records.Add(withFence);
        }

        return [.. records.OrderByDescending(r => r.OrderKey).ThenByDescending(r => r.IsRunning)];
    }

    private static async Task<bool> KnownAsync(ConsulTaskLedger ledger, TaskId task, CancellationToken cancellationToken) =>
        await ledger.ReadSpecAsync(task, cancellationToken).ConfigureAwait(false) is not null
        || await ledger.HasRunStateAsync(task, cancellationToken).ConfigureAwait(false);

    private static void WriteTable(TextWriter output, List<RunRecord> records)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
            Out = new AnsiConsoleOutput(output),
        });
        console.Profile.Width = 240;
        var table = new Table { Border = TableBorder.None, ShowHeaders = true };
        foreach (var column in new[] { "SLOT", "STATE", "NODE", "ATTEMPT", "STARTED", "DURATION", "EXIT", "REASON" })
        {
            table.AddColumn(new TableColumn(new Text(column)) { NoWrap = true, Padding = new Padding(0, 0, 3, 0) });
        }

        foreach (var record in records)
        {
            var duration = record.StartedAt is { } started && record.FinishedAt is { } finished && record.State is not (RunState.Skipped or RunState.Missed)
                ? GoDuration.Format(TimeSpan.FromMilliseconds(Math.Round((finished - started).TotalMilliseconds)))
                : record.IsRunning ? "running" : "-";
            IRenderable[] cells =
            [
                new Text(record.IsManual
                    ? $"manual #{record.TriggerIndex!.Value.ToString(CultureInfo.InvariantCulture)} ({record.Trigger})"
                    : $"{Utc(DateTimeOffset.FromUnixTimeSeconds(record.Slot))} ({record.Slot.ToString(CultureInfo.InvariantCulture)})"),
                new Text(JsonSerializer.Serialize(record.State).Trim('"')),
                new Text(record.Node),
                new Text(record.Attempt.ToString(CultureInfo.InvariantCulture)),
                new Text(record.StartedAt is { } s ? Utc(s) : "-"),
                new Text(duration),
                new Text(record.ExitCode?.ToString(CultureInfo.InvariantCulture) ?? "-"),
                new Text(record.Reason ?? ""),
            ];
            table.AddRow(cells);
        }

        console.Write(table);
        if (records.Count == 0)
        {
            output.WriteLine("(no runs recorded)");
        }
    }

    private static string Utc(DateTimeOffset instant) => instant.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
}
