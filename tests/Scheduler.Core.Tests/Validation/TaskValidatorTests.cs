using Dtask.Core.Manifests;

namespace Dtask.Core.Tests.Validation;

public sealed class TaskValidatorTests
{
    /// <summary>A manifest named <c>demo</c> whose spec is <paramref name="spec"/> (indented by the caller's lines).</summary>
    private static string Manifest(string spec, string metadata = "name: demo") =>
        "apiVersion: dtask.dev/v1alpha1\nkind: ScheduledTask\nmetadata:\n  "
        + metadata.Replace("\n", "\n  ", StringComparison.Ordinal)
        + "\nspec:\n  "
        + spec.Replace("\n", "\n  ", StringComparison.Ordinal)
        + "\n";

    private static List<string> Errors(string yaml) =>
        [.. ManifestReader.ReadText(yaml, "t.yaml").Single().Errors.Select(e => e.ToString())];

    public static TheoryData<string, string, string[]> Rows() => new()
    {
        // Valid specs: each rule's edge is allowed.
        { "cron with a time zone, valid", "schedule: \"30 2 * * *\"\ntimeZone: Europe/Berlin\ncommand: [date]", [] },
        { "hashed cron, valid", "schedule: \"H H * * 1-5\"\nshell: echo hi", [] },
        { "six-field cron with seconds, valid", "schedule: \"*/10 * * * * *\"\ncommand: [date]", [] },
        { "macro, valid", "schedule: \"@hourly\"\ncommand: [date]", [] },
        { "every 1s is the shortest period, valid", "every: 1s\ncommand: [date]", [] },
        { "jitter 0 is allowed, valid", "every: 1m\njitter: 0s\ncommand: [date]", [] },
        { "jitter just under the period, valid", "every: 10s\njitter: 9.5s\ncommand: [date]", [] },
        { "env with an empty value, valid", "every: 1m\ncommand: [env]\nenv:\n  - name: _EMPTY\n  - name: A1\n    value: x", [] },
        { "history and retries at their bounds, valid", "every: 1m\ncommand: [x]\nhistory: 1000\nretries:\n  limit: 100\n  backoff: 1ms", [] },
        { "prefixed node selector key, valid", "every: 1m\ncommand: [x]\nnodeSelector:\n  dtask.dev/role: \"\"\n  zone: eu-1a", [] },
        { "all enum words, valid", "every: 1m\ncommand: [x]\nconcurrencyPolicy: Replace\nmissedRunPolicy: RunOnce\nplacement: RoundRobin\nnotify:\n  slack:\n    on: [start, success, failure, missed, lost]", [] },

        // Schedule.
        { "both schedule and every", "schedule: \"@daily\"\nevery: 1h\ncommand: [x]", ["spec.every: cannot be set together with spec.schedule; set exactly one of them"] },
        { "neither schedule nor every", "command: [x]", ["spec: one of schedule (a cron expression) or every (a period such as 5m) is required"] },
        { "empty schedule", "schedule: \" \"\ncommand: [x]", ["spec.schedule: must not be empty"] },
        { "every below one second", "every: 999ms\ncommand: [x]", ["spec.every: 999ms is too short; the shortest period is 1s"] },
        { "every zero", "every: 0s\ncommand: [x]", ["spec.every: must be positive, not 0s"] },
        { "every negative", "every: -1m\ncommand: [x]", ["spec.every: must be positive, not -1m"] },
        { "every without a unit", "every: \"300\"\ncommand: [x]", ["spec.every: '300' has a number without a unit; use one of ns, us, ms, s, m, h (for example 90s)"] },
        { "jitter as long as every", "every: 1m\njitter: 60s\ncommand: [x]", ["spec.jitter: 60s must be shorter than the period (1m)"] },
        { "negative jitter", "every: 1m\njitter: -1s\ncommand: [x]", ["spec.jitter: must not be negative, not -1s"] },
        { "unknown time zone", "schedule: \"@daily\"\ntimeZone: Europe/Atlantis\ncommand: [x]", ["spec.timeZone: 'Europe/Atlantis' is not a known IANA time zone; write one such as Europe/Berlin or UTC"] },

        // Command.
        { "both command and shell", "every: 1m\ncommand: [x]\nshell: x", ["spec.shell: cannot be set together with spec.command; set exactly one of them"] },
        { "neither command nor shell", "every: 1m", ["spec: one of command (an argv list) or shell (a script for /bin/sh -c) is required"] },
        { "empty command", "every: 1m\ncommand: []", ["spec.command: must not be empty; its first entry is the program to run"] },
        { "empty program", "every: 1m\ncommand: [\" \"]", ["spec.command[0]: the program to run must not be empty"] },
        { "blank shell", "every: 1m\nshell: \"  \"", ["spec.shell: must not be empty"] },
        { "relative working dir", "every: 1m\ncommand: [x]\nworkingDir: data", ["spec.workingDir: 'data' is not an absolute path; start it with /"] },

        // Env.
        { "env name with a dash", "every: 1m\ncommand: [x]\nenv:\n  - name: MY-VAR", ["spec.env[0].name: 'MY-VAR' is not a variable name: use letters, digits and '_', not starting with a digit"] },
        { "env name reserved", "every: 1m\ncommand: [x]\nenv:\n  - name: DTASK_SLOT\n    value: \"1\"", ["spec.env[0].name: 'DTASK_SLOT' is reserved: names starting with DTASK_ are set by the executor"] },
        { "env name twice", "every: 1m\ncommand: [x]\nenv:\n  - name: A\n  - name: B\n  - name: A", ["spec.env[2].name: 'A' is already set by spec.env[0]"] },
        { "env without a name", "every: 1m\ncommand: [x]\nenv:\n  - value: x", ["spec.env[0].name: is required"] },

        // Durations that must be positive.
        { "zero timeout", "every: 1m\ncommand: [x]\ntimeout: 0s", ["spec.timeout: must be positive, not 0s"] },
        { "negative starting deadline", "every: 1m\ncommand: [x]\nstartingDeadline: -1h", ["spec.startingDeadline: must be positive, not -1h"] },
        { "zero backoff", "every: 1m\ncommand: [x]\nretries:\n  backoff: 0ms", ["spec.retries.backoff: must be positive, not 0ms"] },
        { "timeout not a duration", "every: 1m\ncommand: [x]\ntimeout: soon", ["spec.timeout: 'soon' is not a duration; write one such as 90s, 5m or 1h30m"] },

        // Ranges and enums.
        { "history zero", "every: 1m\ncommand: [x]\nhistory: 0", ["spec.history: 0 is out of range; use 1 to 1000"] },
        { "history too large", "every: 1m\ncommand: [x]\nhistory: 1001", ["spec.history: 1001 is out of range; use 1 to 1000"] },
        { "retries negative", "every: 1m\ncommand: [x]\nretries:\n  limit: -1", ["spec.retries.limit: -1 is out of range; use 0 to 100"] },
        { "history beyond int32", "every: 1m\ncommand: [x]\nhistory: 99999999999", ["spec.history: 99999999999 is out of range"] },
        { "missed run policy lower case", "every: 1m\ncommand: [x]\nmissedRunPolicy: skip", ["spec.missedRunPolicy: 'skip' is not allowed; use one of: Skip, RunOnce"] },
        { "placement as a number", "every: 1m\ncommand: [x]\nplacement: 1", ["spec.placement: expected one of: Any, RoundRobin, found the number 1"] },

        // Labels and names.
        { "node selector value too odd", "every: 1m\ncommand: [x]\nnodeSelector:\n  zone: \"-eu\"", ["spec.nodeSelector[zone]: label value '-eu' is not valid: at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"] },
        { "node selector prefix not a domain", "every: 1m\ncommand: [x]\nnodeSelector:\n  Example.COM/zone: a", ["spec.nodeSelector[Example.COM/zone]: label key 'Example.COM/zone' has an invalid prefix: it must be a DNS subdomain such as example.com"] },
        { "node selector value missing", "every: 1m\ncommand: [x]\nnodeSelector:\n  zone:", ["spec.nodeSelector[zone]: expected a string, found null"] },
        { "slack channel empty", "every: 1m\ncommand: [x]\nnotify:\n  slack:\n    channel: \" \"", ["spec.notify.slack.channel: must be 1 to 80 characters"] },
        { "datadog tag empty", "every: 1m\ncommand: [x]\nnotify:\n  datadog:\n    tags: [ok, \"\"]", ["spec.notify.datadog.tags[1]: must be 1 to 200 characters"] },
    };

    [Theory]
    [MemberData(nameof(Rows))]
    public void Spec_rules(string row, string spec, string[] expected)
    {
        _ = row;
        Assert.Equal(expected, Errors(Manifest(spec)));
    }

    public static TheoryData<string, string, string[]> MetadataRows() => new()
    {
        { "name with upper case", "name: Backup", ["metadata.name: 'Backup' is not a DNS-1123 label: use lower-case letters, digits and '-', starting and ending with a letter or digit"] },
        { "name with a slash", "name: a/b", ["metadata.name: 'a/b' is not a DNS-1123 label: use lower-case letters, digits and '-', starting and ending with a letter or digit"] },
        { "name with a dot", "name: a.b", ["metadata.name: 'a.b' is not a DNS-1123 label: use lower-case letters, digits and '-', starting and ending with a letter or digit"] },
        { "name ending with a dash", "name: backup-", ["metadata.name: 'backup-' is not a DNS-1123 label: use lower-case letters, digits and '-', starting and ending with a letter or digit"] },
        { "name of 64 characters", "name: " + new string('a', 64), [$"metadata.name: '{new string('a', 64)}' is 64 characters; at most 63 are allowed"] },
        { "name of 63 characters, valid", "name: " + new string('a', 63), [] },
        { "namespace with dots", "name: x\nnamespace: ..", ["metadata.namespace: '..' is not a DNS-1123 label: use lower-case letters, digits and '-', starting and ending with a letter or digit"] },
        { "empty name", "name: \"\"", ["metadata.name: must not be empty"] },
        { "name as a number", "name: 42", ["metadata.name: expected a string, found the number 42"] },
        { "bad label key", "name: x\nlabels:\n  \"a b\": c", ["metadata.labels[a b]: label key 'a b' is not valid: the name part has at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"] },
    };

    [Theory]
    [MemberData(nameof(MetadataRows))]
    public void Metadata_rules(string row, string metadata, string[] expected)
    {
        _ = row;
        Assert.Equal(expected, Errors(Manifest("every: 1m\ncommand: [x]", metadata)));
    }

    [Fact]
    public void Every_error_of_a_document_is_reported_at_once_in_document_order()
    {
        var yaml = Manifest("every: \"1\"\ncommand: [\"\"]\ncolour: blue\nenv:\n  - name: DTASK_X\nhistory: -3\nsuspend: \"no\"", "name: Bad_Name");

        Assert.Equal(
            [
                "spec.colour: unknown field",
                "spec.suspend: expected true or false, found the string 'no'",
                "metadata.name: 'Bad_Name' is not a DNS-1123 label: use lower-case letters, digits and '-', starting and ending with a letter or digit",
                "spec.every: '1' has a number without a unit; use one of ns, us, ms, s, m, h (for example 90s)",
                "spec.command[0]: the program to run must not be empty",
                "spec.env[0].name: 'DTASK_X' is reserved: names starting with DTASK_ are set by the executor",
                "spec.history: -3 is out of range; use 1 to 1000",
            ],
            Errors(yaml));
    }

    [Fact]
    public void A_malformed_field_is_reported_once_not_again_as_missing()
    {
        var yaml = Manifest("every: [1m]\nshell: {run: x}");

        Assert.Equal(
            [
                "spec.every: expected a string, found a list",
                "spec.shell: expected a string, found a mapping",
            ],
            Errors(yaml));
    }

    [Theory]
    [InlineData("0 25 * * *", "(hour)")]
    [InlineData("0 0 32 * *", "(day-of-month)")]
    [InlineData("0 0 * 13 *", "(month)")]
    [InlineData("0 0 * * 9", "(day-of-week)")]
    public void A_cron_error_names_the_cron_field(string cron, string fieldName)
    {
        var error = Assert.Single(Errors(Manifest($"schedule: \"{cron}\"\ncommand: [x]")));

        Assert.StartsWith("spec.schedule: ", error, StringComparison.Ordinal);
        Assert.Contains(fieldName, error, StringComparison.Ordinal);
    }

    [Fact]
    public void Api_version_and_kind_are_required()
    {
        var yaml = "metadata:\n  name: x\nspec:\n  every: 1m\n  command: [x]\n";

        Assert.Equal(["kind: is required; use ScheduledTask", "apiVersion: is required; use dtask.dev/v1alpha1"], Errors(yaml));
    }

    [Fact]
    public void A_missing_spec_is_reported()
    {
        var yaml = "apiVersion: dtask.dev/v1alpha1\nkind: ScheduledTask\nmetadata:\n  name: x\n";

        Assert.Contains("spec: is required", Errors(yaml));
    }

    [Fact]
    public void A_spec_that_is_not_a_mapping_is_one_error()
    {
        var yaml = "apiVersion: dtask.dev/v1alpha1\nkind: ScheduledTask\nmetadata:\n  name: x\nspec: run-it\n";

        Assert.Equal(["spec: expected a mapping of fields, found the string 'run-it'"], Errors(yaml));
    }
}
