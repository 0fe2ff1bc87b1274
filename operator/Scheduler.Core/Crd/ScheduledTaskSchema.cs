using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Dtask.Core.Manifests;
using Dtask.Core.Model;
using Dtask.Core.Validation;

namespace Dtask.Core.Crd;

/// <summary>
/// The OpenAPI schema of <see cref="ScheduledTask"/>, written beside the model and kept equal to it by a test that
/// walks the C# types. It is the CRD's <c>openAPIV3Schema</c> and the list of fields the manifest reader accepts.
/// </summary>
public static class ScheduledTaskSchema
{
    /// <summary>A DNS-1123 label.</summary>
    public const string DnsLabelPattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

    /// <summary>A Go duration without a sign (<c>90s</c>, <c>1h30m</c>, <c>0</c>).</summary>
    public const string DurationPattern = "^(0|([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$";

    /// <summary>A POSIX-style environment variable name.</summary>
    public const string EnvNamePattern = "^[A-Za-z_][A-Za-z0-9_]*$";

    /// <summary>A Kubernetes label value (may be empty).</summary>
    public const string LabelValuePattern = "^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$";

    /// <summary>The CEL rules on <c>spec</c>.</summary>
    public static IReadOnlyList<CelRule> SpecRules { get; } =
    [
        new("has(self.schedule) != has(self.every)", "exactly one of schedule or every must be set"),
        new("has(self.command) != has(self.shell)", "exactly one of command or shell must be set"),
    ];

    /// <summary>The CEL rule on each <c>env</c> entry.</summary>
    public static CelRule ReservedEnvRule { get; } =
        new("!self.name.startsWith('" + ValidationLimits.ReservedEnvPrefix + "')", "names starting with " + ValidationLimits.ReservedEnvPrefix + " are set by the executor");

    /// <summary>The CEL rule on each <c>env[].valueFrom</c>.</summary>
    public static CelRule ValueFromRule { get; } = new("has(self.file) != has(self.secretKeyRef)", "exactly one of file or secretKeyRef must be set");

    /// <summary>The CRD's <c>openAPIV3Schema</c>: <c>metadata</c> is left to the API server.</summary>
    public static SchemaNode Root { get; } = BuildRoot(new SchemaNode { Type = "object" });

    /// <summary>The whole document as the manifest reader checks it, <c>metadata</c> included.</summary>
    public static SchemaNode Document { get; } = BuildRoot(Metadata());

    /// <summary>Kubernetes metadata fields that may appear in a manifest (for example one exported with <c>kubectl get -o yaml</c>) and are ignored.</summary>
    public static IReadOnlySet<string> IgnoredMetadataFields { get; } = new HashSet<string>(StringComparer.Ordinal)
    {
        "generateName", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds", "finalizers", "ownerReferences", "managedFields",
    };

    /// <summary>The manifest words of an enum, in declaration order (its <see cref="JsonStringEnumMemberNameAttribute"/> names where given).</summary>
    public static IReadOnlyList<string> EnumValues<TEnum>()
        where TEnum : struct, Enum => EnumWords.Of<TEnum>();

    private static SchemaNode BuildRoot(SchemaNode metadata) => new()
    {
        Type = "object",
        Description = "A task declared once and fired by exactly one node of a fleet for each scheduled time.",
        Required = ["spec"],
        Properties =
        [
            new("apiVersion", Str("APIVersion defines the versioned schema of this representation of an object.")),
            new("kind", Str("Kind is a string value representing the REST resource this object represents.")),
            new("metadata", metadata),
            new("spec", Spec()),
            new("status", Status()),
        ],
    };

    private static SchemaNode Metadata() => new()
    {
        Type = "object",
        Properties =
        [
            new("name", Str("A DNS-1123 label.") with { MaxLength = ValidationLimits.MaxNameLength, Pattern = DnsLabelPattern }),
            new("namespace", Str("A DNS-1123 label; default when absent.") with { MaxLength = ValidationLimits.MaxNameLength, Pattern = DnsLabelPattern }),
            new("labels", StringMap("Labels.")),
            new("annotations", StringMap("Annotations.")),
            new("generation", Int64("Set by the API server.")),
            new("uid", Str("Set by the API server.")),
            new("resourceVersion", Str("Set by the API server.")),
            new("creationTimestamp", Time("Set by the API server.")),
        ],
    };

    private static SchemaNode Spec() => new()
    {
        Type = "object",
        Description = "What to run, when and where.",
        Validations = SpecRules,
        Properties =
        [
            new("schedule", Str("Cron: 5 or 6 fields (seconds first) or a macro such as @hourly. H in a field is a value hashed from the task's name. Exactly one of schedule and every.") with { MinLength = 1, MaxLength = ValidationLimits.MaxScheduleLength }),
            new("every", Duration("A period such as 90s or 1h; slots are multiples of it since the Unix epoch. At least 1s. Exactly one of schedule and every.")),
            new("timeZone", Str("IANA time zone of schedule, such as Europe/Berlin; UTC when absent.") with { MinLength = 1, MaxLength = ValidationLimits.MaxTimeZoneLength }),
            new("jitter", Duration("Upper bound of a random delay added to each fire; the same on every node for a slot. Shorter than the period.")),
            new("command", new SchemaNode
            {
                Type = "array",
                Description = "The argv to execute, without a shell. Exactly one of command and shell.",
                MinItems = 1,
                MaxItems = ValidationLimits.MaxCommandArgs,
                Items = Str(null) with { MaxLength = ValidationLimits.MaxArgLength },
                ListType = "atomic",
            }),
            new("shell", Str("A script run by /bin/sh -c. Exactly one of command and shell.") with { MinLength = 1, MaxLength = ValidationLimits.MaxShellLength }),
            new("env", new SchemaNode
            {
                Type = "array",
                Description = "Environment variables added to the child's environment. Names starting with DTASK_ are reserved.",
                MaxItems = ValidationLimits.MaxEnvVars,
                ListType = "map",
                ListMapKeys = ["name"],
                Items = new SchemaNode
                {
                    Type = "object",
                    Required = ["name"],
                    Validations = [ReservedEnvRule],
                    Properties =
                    [
                        new("name", Str("The variable's name.") with { Pattern = EnvNamePattern, MaxLength = ValidationLimits.MaxEnvNameLength }),
                        new("value", Str("The variable's value; empty when absent.") with { MaxLength = ValidationLimits.MaxEnvValueLength }),
                        new("valueFrom", new SchemaNode
                        {
                            Type = "object",
                            Description = "Where the value comes from instead of value: exactly one of file or secretKeyRef.",
                            Validations = [ValueFromRule],
                            Properties =
                            [
                                new("file", Str("An absolute path on the node, read when the run starts; its content (one trailing newline dropped) is the value, never written to Consul, run records or logs.") with { Pattern = "^/", MaxLength = ValidationLimits.MaxWorkingDirLength }),
                                new("secretKeyRef", new SchemaNode
                                {
                                    Type = "object",
                                    Description = "A key of a Secret in the task's namespace. Resolved only by an operator started with --resolve-secrets, which writes the value into the task's spec in Consul (readable by every executor); refused otherwise.",
                                    Required = ["name", "key"],
                                    Properties =
                                    [
                                        new("name", Str("The Secret's name.") with { MaxLength = 253 }),
                                        new("key", Str("The key in the Secret's data.") with { MaxLength = 253 }),
                                    ],
                                }),
                            ],
                        }),
                    ],
                },
            }),
            new("workingDir", Str("The child's working directory, an absolute path.") with { Pattern = "^/", MaxLength = ValidationLimits.MaxWorkingDirLength }),
            new("timeout", Duration("How long a run may take before its process group is stopped.")),
            new("concurrencyPolicy", Enum<ConcurrencyPolicy>("Forbid skips a slot while the previous run still goes; Replace stops the running one first.", "Forbid")),
            new("startingDeadline", Duration("How late after its slot a run may still start; later slots count as missed.")),
            new("missedRunPolicy", Enum<MissedRunPolicy>("Skip records missed slots; RunOnce runs the most recent one once.", "Skip")),
            new("retries", new SchemaNode
            {
                Type = "object",
                Description = "Retries of a failed run within the slot's deadline.",
                Properties =
                [
                    new("limit", Int32("How many more attempts after the first failure.") with { Minimum = 0, Maximum = ValidationLimits.MaxRetries }),
                    new("backoff", Duration("Wait before the first retry, doubled for each next one; 10s when absent.")),
                ],
            }),
            new("nodeSelector", StringMap("Labels an executor must advertise to be eligible.") with
            {
                MaxItems = ValidationLimits.MaxNodeSelector,
                AdditionalProperties = Str(null) with { MaxLength = ValidationLimits.MaxNameLength, Pattern = LabelValuePattern },
            }),
            new("placement", Enum<Placement>("Any: any eligible node, spread by a hash of (task, slot); RoundRobin: every eligible node takes a turn.", "Any")),
            new("suspend", new SchemaNode { Type = "boolean", Description = "When true, no new slot fires.", Default = false }),
            new("notify", new SchemaNode
            {
                Type = "object",
                Description = "Where runs are reported.",
                Properties =
                [
                    new("slack", new SchemaNode
                    {
                        Type = "object",
                        Description = "Slack messages through the executor's incoming webhook (a secret, not part of the task).",
                        Properties =
                        [
                            new("on", new SchemaNode
                            {
                                Type = "array",
                                Description = "Events that send a message; failure, missed and lost when absent.",
                                Items = Enum<NotifyEvent>(null, null),
                                ListType = "set",
                            }),
                            new("channel", Str("Overrides the webhook's channel.") with { MinLength = 1, MaxLength = ValidationLimits.MaxChannelLength }),
                        ],
                    }),
                    new("datadog", new SchemaNode
                    {
                        Type = "object",
                        Description = "DataDog metrics of this task.",
                        Properties =
                        [
                            new("tags", new SchemaNode
                            {
                                Type = "array",
                                Description = "Tags added to every metric of this task.",
                                MaxItems = ValidationLimits.MaxTags,
                                Items = Str(null) with { MinLength = 1, MaxLength = ValidationLimits.MaxTagLength },
                                ListType = "atomic",
                            }),
                        ],
                    }),
                ],
            }),
            new("history", Int32("How many finished run records to keep.") with { Minimum = 1, Maximum = ValidationLimits.MaxHistory, Default = ScheduledTaskSpec.DefaultHistory }),
        ],
    };

    private static SchemaNode Status() => new()
    {
        Type = "object",
        Description = "What the operator observed.",
        Properties =
        [
            new("observedGeneration", Int64("The metadata.generation this status describes.")),
            new("lastScheduleTime", Time("The most recent slot that was claimed.")),
            new("lastSuccessfulTime", Time("When the most recent successful run finished.")),
            new("lastRun", new SchemaNode
            {
                Type = "object",
                Description = "The most recent run.",
                Properties =
                [
                    new("slot", Time("The nominal fire time of the run's slot.")),
                    new("node", Str("The node that ran it.")),
                    new("startedAt", Time("When the child started.")),
                    new("finishedAt", Time("When the child finished.")),
                    new("exitCode", Int32("The child's exit code.")),
                    new("result", Str("running, succeeded, failed, skipped, missed or lost.")),
                ],
            }),
            new("nextScheduleTime", Time("The next nominal slot.")),
            new("conditions", new SchemaNode
            {
                Type = "array",
                Description = "Ready and Synced.",
                ListType = "map",
                ListMapKeys = ["type"],
                Items = new SchemaNode
                {
                    Type = "object",
                    Required = ["type", "status"],
                    Properties =
                    [
                        new("type", Str("Ready or Synced.")),
                        new("status", Str("True, False or Unknown.") with { Enum = ["True", "False", "Unknown"] }),
                        new("reason", Str("A CamelCase word.")),
                        new("message", Str("For people.")),
                        new("lastTransitionTime", Time("When status last changed.")),
                    ],
                },
            }),
        ],
    };

    private static SchemaNode Str(string? description) => new() { Type = "string", Description = description };

    private static SchemaNode Duration(string description) =>
        Str(description) with { Pattern = DurationPattern, MaxLength = ValidationLimits.MaxDurationLength };

    private static SchemaNode Time(string description) => Str(description) with { Format = "date-time" };

    private static SchemaNode Int32(string description) => new() { Type = "integer", Format = "int32", Description = description };

    private static SchemaNode Int64(string description) => new() { Type = "integer", Format = "int64", Description = description };

    private static SchemaNode StringMap(string description) => new()
    {
        Type = "object",
        Description = description,
        AdditionalProperties = Str(null),
    };

    private static SchemaNode Enum<TEnum>(string? description, string? defaultValue)
        where TEnum : struct, Enum => new()
        {
            Type = "string",
            Description = description,
            Enum = EnumValues<TEnum>(),
            Default = defaultValue is null ? null : JsonValue.Create(defaultValue),
        };
}
