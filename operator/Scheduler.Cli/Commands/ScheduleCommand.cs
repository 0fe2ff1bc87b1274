using System.CommandLine;
using System.Globalization;
using Dtask.Core.Durations;
using Dtask.Core.Manifests;
using Dtask.Core.Scheduling;

namespace Dtask.Cli.Commands;

/// <summary>
/// <c>dtask schedule -f FILE|DIR [--from ISO-8601] [--count N]</c>: previews the next slots of each task, in UTC
/// and in the task's time zone, with <c>H</c> resolved and the jittered fire instants (like
/// <c>systemd-analyze calendar</c>).
/// </summary>
internal static class ScheduleCommand
{
    private const int DefaultCount = 5;
    private const int MaxCount = 10_000;

    public static Command Create()
    {
        var files = new Option<string[]>("--file", "-f")
        {
            Description = "A manifest file, or a directory read recursively (*.yaml, *.yml). Repeatable.",
            Required = true,
        };
        var from = new Option<string?>("--from")
        {
            Description = "Show the slots after this instant (ISO-8601, such as 2026-11-28T00:00:00Z; no offset means UTC). Default: now.",
        };
        var count = new Option<int>("--count", "-n")
        {
            Description = $"How many slots to show per task (1-{MaxCount}).",
            DefaultValueFactory = _ => DefaultCount,
        };
        var command = new Command("schedule", "Preview the next slots of each task: nominal UTC instant, local time in the task's zone, slot id, and the jittered fire time. Exit 1 when a document is invalid.")
        {
            files,
            from,
            count,
        };
        command.SetAction(parseResult =>
        {
            var output = parseResult.InvocationConfiguration.Output;
            var error = parseResult.InvocationConfiguration.Error;
            return Run(parseResult.GetRequiredValue(files), parseResult.GetValue(from), parseResult.GetValue(count), output, error);
        });
        return command;
    }

    private static int Run(IReadOnlyList<string> paths, string? fromText, int count, TextWriter output, TextWriter error)
    {
        var usable = true;
        foreach (var path in paths.Where(p => !File.Exists(p) && !Directory.Exists(p)))
        {
            error.WriteLine($"dtask schedule: {path}: no such file or directory");
            usable = false;
        }

        DateTimeOffset after = TimeProvider.System.GetUtcNow();
        if (fromText is not null && !TryParseInstant(fromText, out after))
        {
            error.WriteLine($"dtask schedule: --from '{fromText}' is not an ISO-8601 instant; write one such as 2026-11-28T00:00:00Z");
            usable = false;
        }

        if (count is < 1 or > MaxCount)
        {
            error.WriteLine($"dtask schedule: --count {count.ToString(CultureInfo.InvariantCulture)} must be between 1 and {MaxCount.ToString(CultureInfo.InvariantCulture)}");
            usable = false;
        }

        if (!usable)
        {
            return Program.UsageError;
        }

        var documents = ManifestReader.Read(paths);
        if (documents.Count == 0)
        {
            error.WriteLine($"dtask schedule: no manifests found in {string.Join(", ", paths)}");
            return Program.Failure;
        }

        var invalid = 0;
        var first = true;
        foreach (var document in documents)
        {
            if (!first)
            {
                output.WriteLine();
            }

            first = false;
            if (document.Task is not { } task)
            {
                invalid++;
                foreach (var line in document.ErrorLines())
                {
                    output.WriteLine(line);
                }

                continue;
            }

            var schedule = TaskSchedule.Create(task.Spec.ToScheduleSpec(task.Key));
            new SchedulePreview(schedule, task.Key).Write(output, after, count);
        }

        return invalid == 0 ? Program.Success : Program.Failure;
    }

    private static bool TryParseInstant(string text, out DateTimeOffset instant) =>
        DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out instant);

    /// <summary>The preview of one task: a header and one line per slot.</summary>
    internal sealed record SchedulePreview(TaskSchedule Schedule, string Task)
    {
        /// <summary>The next <paramref name="count"/> slots after <paramref name="after"/>: nominal UTC instant, local time in the task's zone, slot id, and the jittered fire instant (null without jitter).</summary>
        public IEnumerable<(string Utc, string Local, Slot Slot, string? Fires)> Rows(DateTimeOffset after, int count)
        {
            var shown = 0;
            for (var t = Schedule.Next(after); t is { } nominal && shown < count; t = Schedule.Next(nominal), shown++)
            {
                var slot = Slot.At(nominal);
                yield return (Utc(nominal), Local(nominal), slot, Schedule.Jitter > TimeSpan.Zero ? Utc(Schedule.FireTime(slot)) : null);
            }
        }

        public void Write(TextWriter output, DateTimeOffset after, int count)
        {
            var spec = Schedule.Spec;
            var written = spec.Cron ?? $"every {GoDuration.Format(spec.Every!.Value)}";
            output.WriteLine($"        task: {Task}");
            output.WriteLine($"    schedule: {written.Trim()}");
            if (!string.Equals(written.Trim(), Schedule.Expression, StringComparison.Ordinal))
            {
                output.WriteLine($"    resolved: {Schedule.Expression}");
            }

            output.WriteLine($"   time zone: {Schedule.TimeZone.Id}");
            if (Schedule.Jitter > TimeSpan.Zero)
            {
                output.WriteLine($"      jitter: {GoDuration.Format(Schedule.Jitter)}");
            }

            output.WriteLine($"  next slots after {Utc(after)}:");
            var shown = 0;
            foreach (var row in Rows(after, count))
            {
                shown++;
                var line = $"    {row.Utc}  {row.Local}  (slot {row.Slot})";
                if (row.Fires is { } fires)
                {
                    line += $"  fires {fires}";
                }

                output.WriteLine(line);
            }

            if (shown == 0)
            {
                output.WriteLine("    (none)");
            }
        }

        private string Local(DateTimeOffset instant)
        {
            var local = TimeZoneInfo.ConvertTime(instant, Schedule.TimeZone);
            return $"{local.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)} {Abbreviation(local)}";
        }

        private string Abbreviation(DateTimeOffset local)
        {
            var zone = Schedule.TimeZone;
            if (zone == TimeZoneInfo.Utc)
            {
                return "UTC";
            }

            var name = zone.IsDaylightSavingTime(local) ? zone.DaylightName : zone.StandardName;
            if (name.Length is > 0 and <= 6 && !name.Contains(' ', StringComparison.Ordinal))
            {
                return name;
            }

            var offset = local.Offset;
            var sign = offset < TimeSpan.Zero ? "-" : "+";
            return $"{sign}{offset.Duration().ToString("hhmm", CultureInfo.InvariantCulture)}";
        }

        private static string Utc(DateTimeOffset instant)
        {
            var utc = instant.ToUniversalTime();
            return utc.ToString(utc.Ticks % TimeSpan.TicksPerSecond == 0 ? "yyyy-MM-dd'T'HH:mm:ss'Z'" : "yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);
        }
    }
}
