using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Dtask.Core.Crd;
using Dtask.Core.Durations;
using Dtask.Core.Manifests;
using Dtask.Core.Model;
using Dtask.Core.Scheduling;

namespace Dtask.Core.Validation;

/// <summary>
/// The one validator of <see cref="ScheduledTask"/>, used by every entry point (manifest files, the Kubernetes
/// API, <c>dtask apply</c>, <c>dtask validate</c>). It reports every problem of a document at once, each with its
/// field path and a reason a user can act on.
/// </summary>
public static partial class TaskValidator
{
    /// <summary>
    /// Checks a raw document (a manifest read from YAML, or JSON from the API server): its kind and apiVersion, its
    /// shape (unknown fields, types, enum words), then every rule of <see cref="Validate(ScheduledTask)"/>.
    /// </summary>
    public static TaskCheck Check(JsonNode? document)
    {
        var errors = new List<FieldError>();
        if (document is not JsonObject root)
        {
            errors.Add(new FieldError("", $"expected a mapping with apiVersion, kind, metadata and spec, found {(document is JsonArray ? "a list" : "a single value")}"));
            return new TaskCheck(null, errors, "?");
        }

        var displayName = DisplayName(root);
        var kind = root["kind"];
        if (kind is null)
        {
            errors.Add(new FieldError("kind", $"is required; use {ScheduledTask.KindValue}"));
        }
        else if (kind.GetValueKind() != JsonValueKind.String || kind.GetValue<string>() != ScheduledTask.KindValue)
        {
            var text = kind.GetValueKind() == JsonValueKind.String ? kind.GetValue<string>() : kind.ToJsonString();
            errors.Add(new FieldError("kind", $"{text} is not a {ScheduledTask.KindValue}; only kind {ScheduledTask.KindValue} (apiVersion {ScheduledTask.ApiVersionValue}) is read here"));
            return new TaskCheck(null, errors, displayName);
        }

        var apiVersion = root["apiVersion"];
        if (apiVersion is null)
        {
            errors.Add(new FieldError("apiVersion", $"is required; use {ScheduledTask.ApiVersionValue}"));
        }

        var shape = new ShapeCheck(errors);
        var readable = shape.Check(root, ScheduledTaskSchema.Document, "") ?? new JsonObject();
        ScheduledTask task;
        try
        {
            task = readable.Deserialize<ScheduledTask>(TaskJson.Options) ?? new ScheduledTask();
        }
        catch (JsonException e)
        {
            errors.Add(new FieldError(e.Path?.TrimStart('$', '.') ?? "", e.Message));
            return new TaskCheck(null, errors, displayName);
        }

        if (apiVersion is null)
        {
            task = task with { ApiVersion = ScheduledTask.ApiVersionValue };
        }

        new Rules(errors, shape.Removed).Task(task);
        return new TaskCheck(task, errors, displayName);
    }

    /// <summary>Every problem of a typed task (for example one read from KV or built in code); empty when valid.</summary>
    public static IReadOnlyList<FieldError> Validate(ScheduledTask task)
    {
        ArgumentNullException.ThrowIfNull(task);
        var errors = new List<FieldError>();
        new Rules(errors, new HashSet<string>()).Task(task);
        return errors;
    }

    private static string DisplayName(JsonObject root)
    {
        var metadata = root["metadata"] as JsonObject;
        var name = metadata?["name"] is JsonValue n && n.GetValueKind() == JsonValueKind.String ? n.GetValue<string>() : "?";
        var ns = metadata?["namespace"] is JsonValue s && s.GetValueKind() == JsonValueKind.String && s.GetValue<string>().Length > 0
            ? s.GetValue<string>()
            : ObjectMeta.DefaultNamespace;
        return $"{ns}/{name}";
    }

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]*$")]
    private static partial Regex EnvName();

    [GeneratedRegex("^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")]
    private static partial Regex SecretName();

    [GeneratedRegex("^[-._a-zA-Z0-9]+$")]
    private static partial Regex SecretKey();

    /// <summary>The rules on a typed task. Fields in <c>removed</c> were malformed and are already reported.</summary>
    private sealed class Rules(List<FieldError> errors, IReadOnlySet<string> removed)
    {
        public void Task(ScheduledTask task)
        {
            if (task.ApiVersion != ScheduledTask.ApiVersionValue)
            {
                Add("apiVersion", $"'{task.ApiVersion}' is not served; use {ScheduledTask.ApiVersionValue}");
            }

            if (task.Kind != ScheduledTask.KindValue)
            {
                Add("kind", $"{task.Kind} is not a {ScheduledTask.KindValue}");
            }

            Metadata(task.Metadata);
            Spec(task.Spec, task.Key);
        }

        private void Metadata(ObjectMeta metadata)
        {
            if (metadata.Name is null)
            {
                Add("metadata.name", "is required");
            }
            else if (KubernetesNames.CheckDnsLabel(metadata.Name) is { } nameError)
            {
                Add("metadata.name", nameError);
            }

            if (metadata.Namespace is not null && KubernetesNames.CheckDnsLabel(metadata.Namespace) is { } namespaceError)
            {
                Add("metadata.namespace", namespaceError);
            }

            foreach (var (key, value) in metadata.Labels ?? new Dictionary<string, string>())
            {
                if ((KubernetesNames.CheckLabelKey(key) ?? KubernetesNames.CheckLabelValue(value)) is { } labelError)
                {
                    Add($"metadata.labels[{key}]", labelError);
                }
            }

            foreach (var key in metadata.Annotations?.Keys ?? [])
            {
                if (KubernetesNames.CheckLabelKey(key) is { } annotationError)
                {
                    Add($"metadata.annotations[{key}]", annotationError.Replace("label key", "annotation key", StringComparison.Ordinal));
                }
            }
        }

        private void Spec(ScheduledTaskSpec spec, string hashKey)
        {
            Schedule(spec, hashKey);
            Command(spec);
            Env(spec.Env);

            if (spec.WorkingDir is { } workingDir)
            {
                if (!workingDir.StartsWith('/'))
                {
                    Add("spec.workingDir", $"'{workingDir}' is not an absolute path; start it with /");
                }
                else if (workingDir.Length > ValidationLimits.MaxWorkingDirLength || workingDir.Contains('\0', StringComparison.Ordinal))
                {
                    Add("spec.workingDir", $"is not a usable path (at most {ValidationLimits.MaxWorkingDirLength} characters, no NUL)");
                }
            }

            PositiveDuration("spec.timeout", spec.Timeout);
            PositiveDuration("spec.startingDeadline", spec.StartingDeadline);
            if (spec.Retries is { } retries)
            {
                Range("spec.retries.limit", retries.Limit, 0, ValidationLimits.MaxRetries);
                PositiveDuration("spec.retries.backoff", retries.Backoff);
            }

            NodeSelector(spec.NodeSelector);
            Notify(spec.Notify);
            Range("spec.history", spec.History, 1, ValidationLimits.MaxHistory);

            var size = Encoding.UTF8.GetByteCount(TaskJson.Serialize(spec));
            if (size > ValidationLimits.MaxSpecJsonBytes)
            {
                Add("spec", $"is {size} bytes as JSON; at most {ValidationLimits.MaxSpecJsonBytes} bytes (64 KiB) are allowed");
            }
        }

        private void Schedule(ScheduledTaskSpec spec, string hashKey)
        {
            var hasSchedule = spec.Schedule is not null || removed.Contains("spec.schedule");
            var hasEvery = spec.Every is not null || removed.Contains("spec.every");
            if (hasSchedule && hasEvery)
            {
                Add("spec.every", "cannot be set together with spec.schedule; set exactly one of them");
            }
            else if (!hasSchedule && !hasEvery)
            {
                Add("spec", "one of schedule (a cron expression) or every (a period such as 5m) is required");
            }

            if (spec.Schedule is { } cron && cron.Trim().Length == 0)
            {
                Add("spec.schedule", "must not be empty");
            }

            var every = Duration("spec.every", spec.Every);
            if (every is { } period)
            {
                if (period <= TimeSpan.Zero)
                {
                    Add("spec.every", $"must be positive, not {spec.Every}");
                    every = null;
                }
                else if (period < ValidationLimits.MinEvery)
                {
                    Add("spec.every", $"{spec.Every} is too short; the shortest period is 1s");
                    every = null;
                }
            }

            var jitter = Duration("spec.jitter", spec.Jitter);
            if (jitter < TimeSpan.Zero)
            {
                Add("spec.jitter", $"must not be negative, not {spec.Jitter}");
                jitter = null;
            }
            else if (jitter is { } j && every is { } p && j >= p)
            {
                Add("spec.jitter", $"{spec.Jitter} must be shorter than the period ({spec.Every})");
                jitter = null;
            }

            if (spec.TimeZone is { } zone && !IsTimeZone(zone))
            {
                Add("spec.timeZone", $"'{zone}' is not a known IANA time zone; write one such as Europe/Berlin or UTC");
            }

            var scheduleUsable = (spec.Schedule is not null && spec.Every is null && spec.Schedule.Trim().Length > 0)
                || (spec.Schedule is null && every is not null);
            if (!scheduleUsable || Has("spec.schedule") || Has("spec.every") || Has("spec.jitter"))
            {
                return;
            }

            var scheduleSpec = new ScheduleSpec(spec.Schedule, every, spec.TimeZone, jitter, hashKey);
            foreach (var error in TaskSchedule.Validate(scheduleSpec))
            {
                var path = error.Field.StartsWith("spec.", StringComparison.Ordinal) ? error.Field : "spec." + error.Field;
                if (!Has(path))
                {
                    Add(path, error.Reason);
                }
            }
        }

        private void Command(ScheduledTaskSpec spec)
        {
            var hasCommand = spec.Command is not null || removed.Contains("spec.command");
            var hasShell = spec.Shell is not null || removed.Contains("spec.shell");
            if (hasCommand && hasShell)
            {
                Add("spec.shell", "cannot be set together with spec.command; set exactly one of them");
            }
            else if (!hasCommand && !hasShell)
            {
                Add("spec", "one of command (an argv list) or shell (a script for /bin/sh -c) is required");
            }

            if (spec.Command is { } command)
            {
                if (command.Count == 0)
                {
                    Add("spec.command", "must not be empty; its first entry is the program to run");
                }
                else if (command.Count > ValidationLimits.MaxCommandArgs)
                {
                    Add("spec.command", $"has {command.Count} entries; at most {ValidationLimits.MaxCommandArgs} are allowed");
                }
                else
                {
                    if (command[0].Trim().Length == 0)
                    {
                        Add("spec.command[0]", "the program to run must not be empty");
                    }

                    for (var i = 0; i < command.Count; i++)
                    {
                        if (command[i].Length > ValidationLimits.MaxArgLength)
                        {
                            Add($"spec.command[{i}]", $"is {command[i].Length} characters; at most {ValidationLimits.MaxArgLength} are allowed");
                        }
                        else if (command[i].Contains('\0', StringComparison.Ordinal))
                        {
                            Add($"spec.command[{i}]", "must not contain a NUL character");
                        }
                    }
                }
            }

            if (spec.Shell is { } shell)
            {
                if (shell.Trim().Length == 0)
                {
                    Add("spec.shell", "must not be empty");
                }
                else if (shell.Length > ValidationLimits.MaxShellLength)
                {
                    Add("spec.shell", $"is {shell.Length} characters; at most {ValidationLimits.MaxShellLength} are allowed");
                }
                else if (shell.Contains('\0', StringComparison.Ordinal))
                {
                    Add("spec.shell", "must not contain a NUL character");
                }
            }
        }

        private void Env(IReadOnlyList<EnvVar>? env)
        {
            if (env is null)
            {
                return;
            }

            if (env.Count > ValidationLimits.MaxEnvVars)
            {
                Add("spec.env", $"has {env.Count} entries; at most {ValidationLimits.MaxEnvVars} are allowed");
                return;
            }

            var seen = new Dictionary<string, int>(StringComparer.Ordinal);
            for (var i = 0; i < env.Count; i++)
            {
                var path = $"spec.env[{i}]";
                var name = env[i].Name;
                if (name is null)
                {
                    Add(path + ".name", "is required");
                }
                else if (name.Length > ValidationLimits.MaxEnvNameLength)
                {
                    Add(path + ".name", $"is {name.Length} characters; at most {ValidationLimits.MaxEnvNameLength} are allowed");
                }
                else if (!EnvName().IsMatch(name))
                {
                    Add(path + ".name", $"'{name}' is not a variable name: use letters, digits and '_', not starting with a digit");
                }
                else if (name.StartsWith(ValidationLimits.ReservedEnvPrefix, StringComparison.Ordinal))
                {
                    Add(path + ".name", $"'{name}' is reserved: names starting with {ValidationLimits.ReservedEnvPrefix} are set by the executor");
                }
                else if (seen.TryGetValue(name, out var first))
                {
                    Add(path + ".name", $"'{name}' is already set by spec.env[{first}]");
                }
                else
                {
                    seen[name] = i;
                }

                if (env[i].Value is { Length: > ValidationLimits.MaxEnvValueLength } value)
                {
                    Add(path + ".value", $"is {value.Length} characters; at most {ValidationLimits.MaxEnvValueLength} are allowed");
                }

                if (env[i].ValueFrom is { SecretKeyRef: { } secret } withSecret)
                {
                    if (withSecret.File is not null)
                    {
                        Add(path + ".valueFrom", "exactly one of file or secretKeyRef must be set");
                    }

                    if (secret.Name is not { Length: > 0 } secretName)
                    {
                        Add(path + ".valueFrom.secretKeyRef.name", "is required");
                    }
                    else if (secretName.Length > 253 || !SecretName().IsMatch(secretName))
                    {
                        Add(path + ".valueFrom.secretKeyRef.name", $"'{secretName}' is not a Secret name (a DNS-1123 subdomain of at most 253 characters)");
                    }

                    if (secret.Key is not { Length: > 0 } secretKey)
                    {
                        Add(path + ".valueFrom.secretKeyRef.key", "is required");
                    }
                    else if (secretKey.Length > 253 || !SecretKey().IsMatch(secretKey))
                    {
                        Add(path + ".valueFrom.secretKeyRef.key", $"'{secretKey}' is not a Secret key (letters, digits, '-', '_' and '.')");
                    }

                    // The operator's Kubernetes source writes the Secret's value next to the reference; nothing else resolves one.
                    if (env[i].Value is null)
                    {
                        Add(path + ".valueFrom.secretKeyRef", "is not resolved: only `dtask operator --source kubernetes --resolve-secrets` reads Kubernetes Secrets; use valueFrom.file elsewhere");
                    }
                }
                else if (env[i].ValueFrom is { } from)
                {
                    if (env[i].Value is { Length: > 0 })
                    {
                        Add(path + ".valueFrom", "cannot be given with value: the value comes from one or the other");
                    }

                    if (from.File is not { } file)
                    {
                        Add(path + ".valueFrom.file", "is required");
                    }
                    else if (!file.StartsWith('/'))
                    {
                        Add(path + ".valueFrom.file", $"'{file}' is not an absolute path");
                    }
                    else if (file.Length > ValidationLimits.MaxWorkingDirLength)
                    {
                        Add(path + ".valueFrom.file", $"is {file.Length} characters; at most {ValidationLimits.MaxWorkingDirLength} are allowed");
                    }
                }
            }
        }

        private void NodeSelector(IReadOnlyDictionary<string, string>? selector)
        {
            if (selector is null)
            {
                return;
            }

            if (selector.Count > ValidationLimits.MaxNodeSelector)
            {
                Add("spec.nodeSelector", $"has {selector.Count} entries; at most {ValidationLimits.MaxNodeSelector} are allowed");
            }

            foreach (var (key, value) in selector)
            {
                if ((KubernetesNames.CheckLabelKey(key) ?? KubernetesNames.CheckLabelValue(value)) is { } error)
                {
                    Add($"spec.nodeSelector[{key}]", error);
                }
            }
        }

        private void Notify(NotifySpec? notify)
        {
            if (notify?.Slack?.Channel is { } channel && (channel.Trim().Length == 0 || channel.Length > ValidationLimits.MaxChannelLength))
            {
                Add("spec.notify.slack.channel", $"must be 1 to {ValidationLimits.MaxChannelLength} characters");
            }

            if (notify?.Slack?.On is { } events)
            {
                for (var i = 0; i < events.Count; i++)
                {
                    if (!Enum.IsDefined(events[i]))
                    {
                        Add($"spec.notify.slack.on[{i}]", $"is not allowed; use one of: {string.Join(", ", ScheduledTaskSchema.EnumValues<NotifyEvent>())}");
                    }
                }
            }

            if (notify?.Datadog?.Tags is { } tags)
            {
                if (tags.Count > ValidationLimits.MaxTags)
                {
                    Add("spec.notify.datadog.tags", $"has {tags.Count} entries; at most {ValidationLimits.MaxTags} are allowed");
                    return;
                }

                for (var i = 0; i < tags.Count; i++)
                {
                    if (tags[i].Trim().Length == 0 || tags[i].Length > ValidationLimits.MaxTagLength)
                    {
                        Add($"spec.notify.datadog.tags[{i}]", $"must be 1 to {ValidationLimits.MaxTagLength} characters");
                    }
                }
            }
        }

        private TimeSpan? Duration(string path, string? text)
        {
            if (text is null)
            {
                return null;
            }

            if (!GoDuration.TryParse(text, out var value, out var error))
            {
                Add(path, error!);
                return null;
            }

            return value;
        }

        private void PositiveDuration(string path, string? text)
        {
            if (Duration(path, text) is { } value && value <= TimeSpan.Zero)
            {
                Add(path, $"must be positive, not {text}");
            }
        }

        private void Range(string path, int? value, int min, int max)
        {
            if (value is { } v && (v < min || v > max))
            {
                Add(path, $"{v.ToString(CultureInfo.InvariantCulture)} is out of range; use {min} to {max}");
            }
        }

        private static bool IsTimeZone(string id)
        {
            if (id.Length == 0 || id.Length > ValidationLimits.MaxTimeZoneLength)
            {
                return false;
            }

            return TimeZoneInfo.TryFindSystemTimeZoneById(id, out _);
        }

        private bool Has(string path) => errors.Exists(e => e.Path == path);

        private void Add(string path, string reason)
        {
            if (!removed.Contains(path))
            {
                errors.Add(new FieldError(path, reason));
            }
        }
    }
}
