using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Dtask.Core.Manifests;
using Spectre.Console;
using YamlDotNet.Serialization;

namespace Dtask.Cli.Commands.Tasks;

/// <summary>The output formats of the read commands.</summary>
internal enum OutputFormat
{
    Table,
    Json,
    Yaml,
}

/// <summary>Writes tables (Spectre.Console, no colour, kubectl-like columns), JSON and YAML to a writer.</summary>
internal static class TableOutput
{
    private static readonly JsonSerializerOptions Indented = new(TaskJson.Options) { WriteIndented = true };

    public static System.CommandLine.Option<OutputFormat> FormatOption() => new("--output", "-o")
    {
        Description = "table (default), json or yaml. The JSON and YAML field names are stable for scripts.",
        DefaultValueFactory = _ => OutputFormat.Table,
    };

    /// <summary>A table with the given header and rows, columns separated by three spaces, no borders.</summary>
    public static void WriteTable(TextWriter writer, IReadOnlyList<string> headers, IEnumerable<IReadOnlyList<string>> rows)
    {
        using var rendered = new StringWriter(CultureInfo.InvariantCulture);
        Render(rendered, headers, rows);
        foreach (var line in rendered.ToString().ReplaceLineEndings("\n").Split('\n'))
        {
            if (line.Length > 0)
            {
                writer.WriteLine(line.TrimEnd());
            }
        }
    }

    private static void Render(TextWriter writer, IReadOnlyList<string> headers, IEnumerable<IReadOnlyList<string>> rows)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
            Out = new AnsiConsoleOutput(writer),
        });
        console.Profile.Width = 400;
        var table = new Table().Border(TableBorder.None);
        foreach (var header in headers)
        {
            table.AddColumn(new TableColumn(new Text(header)).NoWrap().Padding(0, 0, 3, 0));
        }

        foreach (var row in rows)
        {
            table.AddRow(row.Select(cell => (Spectre.Console.Rendering.IRenderable)new Text(cell)).ToArray());
        }

        console.Write(table);
    }

    /// <summary>Indented JSON in the task JSON conventions (camelCase, nulls omitted, RFC 3339 UTC times).</summary>
    public static void WriteJson<T>(TextWriter writer, T value) => writer.WriteLine(JsonSerializer.Serialize(value, Indented));

    /// <summary>The same document as <see cref="WriteJson{T}"/>, as YAML.</summary>
    public static void WriteYaml<T>(TextWriter writer, T value)
    {
        var node = JsonSerializer.SerializeToNode(value, TaskJson.Options);
        var serializer = new SerializerBuilder().WithQuotingNecessaryStrings().Build();
        writer.Write(serializer.Serialize(Plain(node)));
    }

    public static void Write<T>(TextWriter writer, OutputFormat format, T value, Action table)
    {
        switch (format)
        {
            case OutputFormat.Json:
                WriteJson(writer, value);
                break;
            case OutputFormat.Yaml:
                WriteYaml(writer, value);
                break;
            default:
                table();
                break;
        }
    }

    /// <summary>An age in the manner of kubectl: <c>45s</c>, <c>3m12s</c>, <c>17m</c>, <c>5h4m</c>, <c>3d</c>.</summary>
    public static string Age(TimeSpan age)
    {
        if (age < TimeSpan.Zero)
        {
            age = TimeSpan.Zero;
        }

        return age switch
        {
            { TotalMinutes: < 2 } => $"{(int)age.TotalSeconds}s",
            { TotalMinutes: < 10 } => age.Seconds == 0 ? $"{(int)age.TotalMinutes}m" : $"{(int)age.TotalMinutes}m{age.Seconds}s",
            { TotalHours: < 3 } => $"{(int)age.TotalMinutes}m",
            { TotalHours: < 8 } => age.Minutes == 0 ? $"{(int)age.TotalHours}h" : $"{(int)age.TotalHours}h{age.Minutes}m",
            { TotalDays: < 2 } => $"{(int)age.TotalHours}h",
            _ => $"{(int)age.TotalDays}d",
        };
    }

    /// <summary>An instant as RFC 3339 UTC to the second.</summary>
    public static string Instant(DateTimeOffset? at) =>
        at is { } value ? value.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture) : "<none>";

    private static object? Plain(JsonNode? node) => node switch
    {
        JsonObject obj => obj.ToDictionary(p => p.Key, p => Plain(p.Value)),
        JsonArray array => array.Select(Plain).ToList(),
        JsonValue value => value.GetValueKind() switch
        {
            JsonValueKind.String => value.GetValue<string>(),
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            JsonValueKind.Number => long.TryParse(value.ToJsonString(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var whole)
                ? whole
                : double.Parse(value.ToJsonString(), NumberStyles.Float, CultureInfo.InvariantCulture),
            _ => null,
        },
        _ => null,
    };
}
