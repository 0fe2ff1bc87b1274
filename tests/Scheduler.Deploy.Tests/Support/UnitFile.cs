namespace Dtask.Deploy.Tests.Support;

/// <summary>A systemd unit file read as (section, key) → values in order. Continuation lines are joined.</summary>
internal sealed class UnitFile
{
    private readonly List<(string Section, string Key, string Value)> _entries;

    private UnitFile(List<(string, string, string)> entries) => _entries = entries;

    public static UnitFile Parse(string text)
    {
        var entries = new List<(string, string, string)>();
        var section = "";
        var pending = "";
        foreach (var raw in text.Split('\n'))
        {
            var line = pending + raw.TrimEnd();
            pending = "";
            if (line.EndsWith('\\'))
            {
                pending = line[..^1] + " ";
                continue;
            }

            var trimmed = line.Trim();
            if (trimmed.Length == 0 || trimmed.StartsWith('#') || trimmed.StartsWith(';'))
            {
                continue;
            }

            if (trimmed.StartsWith('['))
            {
                section = trimmed.Trim('[', ']');
                continue;
            }

            var equals = trimmed.IndexOf('=', StringComparison.Ordinal);
            entries.Add((section, trimmed[..equals].Trim(), trimmed[(equals + 1)..].Trim()));
        }

        return new UnitFile(entries);
    }

    public IReadOnlyList<string> All(string section, string key) =>
        _entries.Where(e => e.Section == section && e.Key == key).Select(e => e.Value).ToList();

    /// <summary>The one value of a key, null when absent; fails when the key is set more than once.</summary>
    public string? Single(string section, string key) => All(section, key) switch
    {
        [] => null,
        [var one] => one,
        var many => throw new InvalidOperationException($"{key}= is set {many.Count} times"),
    };
}
