using System.Net;
using System.Text.Json.Nodes;
using Dtask.Consul.Errors;
using Dtask.Core.Durations;
using Dtask.Core.Manifests;
using Dtask.Core.Model;
using Dtask.Core.Validation;
using Dtask.Operator.Reconciliation;
using Dtask.Operator.Status;
using k8s.Autorest;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Dtask.Operator.Sources.Kubernetes;

/// <summary>What a reconcile asks of the queue: to see the name again after <paramref name="RequeueAfter"/>, or not.</summary>
/// <param name="RequeueAfter">When to reconcile the name again; null for "only on the next event".</param>
public sealed record ControllerResult(TimeSpan? RequeueAfter)
{
    /// <summary>Nothing more to do until the next event.</summary>
    public static ControllerResult Done { get; } = new((TimeSpan?)null);
}

/// <summary>
/// Reconciles one <c>ScheduledTask</c> object, by name, in the manner of a controller-runtime reconciler: it reads
/// the object (cached, else from the API server), decides, writes the difference and returns when to come back.
/// <list type="bullet">
/// <item>Gone: a spec this source still holds in Consul is deleted.</item>
/// <item>Being deleted: the spec is deleted from Consul first, then the <see cref="ScheduledTaskObject.CleanupFinalizer"/>
/// is removed, so the object goes only once Consul no longer has it.</item>
/// <item>Otherwise: the finalizer is added, the object is validated as <c>dtask validate</c> does, written to Consul
/// when valid (an invalid one writes nothing: the previous valid spec stays), and its status rebuilt from what Consul
/// holds and merge-patched on <c>/status</c> when it differs from the object's.</item>
/// </list>
/// All decisions are the <see cref="TaskReconciler"/>'s and the <see cref="TaskStatusBuilder"/>'s.
/// </summary>
public sealed class ScheduledTaskController
{
    private static readonly TimeSpan ConflictRetry = TimeSpan.FromMilliseconds(200);
    private readonly ScheduledTaskApi api;
    private readonly TaskObjectCache cache;
    private readonly TaskReconciler reconciler;
    private readonly TaskObservationReader observations;
    private readonly KubernetesSourceOptions options;
    private readonly TimeProvider time;
    private readonly ILogger logger;
    private readonly Dictionary<TaskId, Backoff> failing = [];
    private long reconciles;
    private long statusWrites;

    /// <summary>Creates the controller.</summary>
    public ScheduledTaskController(ScheduledTaskApi api, TaskObjectCache cache, TaskReconciler reconciler, TaskObservationReader observations,
        KubernetesSourceOptions options, TimeProvider? time = null, ILogger<ScheduledTaskController>? logger = null)
    {
        this.api = api ?? throw new ArgumentNullException(nameof(api));
        this.cache = cache ?? throw new ArgumentNullException(nameof(cache));
        this.reconciler = reconciler ?? throw new ArgumentNullException(nameof(reconciler));
        this.observations = observations ?? throw new ArgumentNullException(nameof(observations));
        this.options = options ?? throw new ArgumentNullException(nameof(options));
        this.time = time ?? TimeProvider.System;
        this.logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    /// <summary>How many reconciles have run.</summary>
    public long Reconciles => Interlocked.Read(ref reconciles);

    /// <summary>How many status patches were sent.</summary>
    public long StatusWrites => Interlocked.Read(ref statusWrites);

    /// <summary>Reconciles <paramref name="name"/> once. Consul and API failures are logged and answered with a backoff.</summary>
    public async Task<ControllerResult> ReconcileAsync(TaskId name, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref reconciles);
        var started = time.GetTimestamp();
        try
        {
            var result = await ReconcileOnceAsync(name, cancellationToken).ConfigureAwait(false);
            failing.Remove(name);
            if (logger.IsEnabled(LogLevel.Debug))
            {
                var elapsed = (long)time.GetElapsedTime(started).TotalMilliseconds;
                OperatorLog.ReconciledObject(logger, name, elapsed, result.RequeueAfter);
            }

            return result;
        }
        catch (ConsulException e)
        {
            return Failed(name, "Consul", e.Message);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode is HttpStatusCode.Conflict or HttpStatusCode.UnprocessableEntity)
        {
            // The object changed since it was read (a precondition of the patch failed): read it again, soon.
            cache.MarkStale(name);
            OperatorLog.ObjectChanged(logger, name);
            return new ControllerResult(ConflictRetry);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            // Deleted meanwhile: the watch's DELETED event brings it back here.
            return ControllerResult.Done;
        }
        catch (HttpOperationException e)
        {
            return Failed(name, "the Kubernetes API", $"{(int)e.Response.StatusCode} {e.Response.ReasonPhrase}");
        }
        catch (HttpRequestException e)
        {
            return Failed(name, "the Kubernetes API", e.Message);
        }
    }

    private ControllerResult Failed(TaskId name, string what, string reason)
    {
        if (!failing.TryGetValue(name, out var backoff))
        {
            backoff = new Backoff(options.InitialBackoff, options.MaxBackoff, Random.Shared);
            failing[name] = backoff;
        }

        var delay = backoff.Next();
        OperatorLog.ReconcileOfObjectFailed(logger, name, what, reason, delay);
        return new ControllerResult(delay);
    }

    private async Task<ControllerResult> ReconcileOnceAsync(TaskId name, CancellationToken cancellationToken)
    {
        var item = cache.Fresh(name) ?? await api.GetAsync(name, cancellationToken).ConfigureAwait(false);
        if (item is null)
        {
            cache.Remove(name);
            if (KubernetesNames.CheckDnsLabel(name.Namespace) is null && KubernetesNames.CheckDnsLabel(name.Name) is null)
            {
                await reconciler.DeleteOneAsync(TaskOwner.Kubernetes, name.Namespace, name.Name, cancellationToken: cancellationToken).ConfigureAwait(false);
            }

            return ControllerResult.Done;
        }

        cache.PutFetched(item);
        if (item.Deleting)
        {
            return await FinalizeAsync(item, cancellationToken).ConfigureAwait(false);
        }

        if (!item.HasCleanupFinalizer)
        {
            item = await PatchFinalizersAsync(item, add: true, cancellationToken).ConfigureAwait(false);
            if (item is null)
            {
                return ControllerResult.Done;
            }
        }

        var manifest = item.Manifest();
        var unresolved = await ResolveSecretsAsync(name, manifest, cancellationToken).ConfigureAwait(false);
        var check = TaskValidator.Check(manifest);
        if (unresolved.Count > 0)
        {
            // The resolver's reasons replace the validator's generic "is not resolved" for the same fields.
            var paths = unresolved.Select(e => e.Path).ToHashSet(StringComparer.Ordinal);
            check = check with { Errors = [.. unresolved, .. check.Errors.Where(e => !paths.Contains(e.Path))] };
        }

        var usableName = KubernetesNames.CheckDnsLabel(name.Namespace) is null && KubernetesNames.CheckDnsLabel(name.Name) is null;
        if (check.IsValid && usableName)
        {
            var outcome = await reconciler.ApplyOneAsync(TaskOwner.Kubernetes, check.Task!, cancellationToken).ConfigureAwait(false);
            if (outcome.Action == TaskAction.Conflict)
            {
                OperatorLog.Conflict(logger, outcome.ToString());
            }
        }
        else
        {
            OperatorLog.Invalid(logger, name.ToString(), "kubernetes", string.Join("; ", check.Errors), "; nothing written to Consul");
        }

        var now = time.GetUtcNow();
        var observation = usableName
            ? await observations.ReadAsync(name.Namespace, name.Name, cancellationToken).ConfigureAwait(false)
            : new TaskObservation(name.Namespace, name.Name, null, null, [], null);

        // Runs of a task another source owns are that source's to show.
        var ours = observation.Envelope is null || observation.Envelope.Owner == TaskOwner.Kubernetes;
        var desired = new DesiredSpec(item.Generation ?? 0, check.Task is { } task ? TaskJson.SpecHash(task.Spec) : "", TaskOwner.Kubernetes);
        var built = TaskStatusBuilder.Build(observation.Envelope, check.IsValid ? null : check.Errors,
            ours ? observation.Current : null, ours ? observation.History : [], now, desired);
        var current = item.Status;
        var status = TaskStatusBuilder.WithTransitionTimes(built, current, now);
        if (StatusPatch.Between(current, status) is { } patch)
        {
            var patched = await api.MergePatchStatusAsync(name, patch, cancellationToken).ConfigureAwait(false);
            Interlocked.Increment(ref statusWrites);
            if (logger.IsEnabled(LogLevel.Debug))
            {
                var text = patch.ToJsonString();
                OperatorLog.StatusPatched(logger, name, text);
            }

            if (patched is not null)
            {
                cache.PutAnswer(item.ResourceVersion, patched);
                if (patched.Generation != item.Generation || patched.Deleting != item.Deleting)
                {
                    // The object changed since it was read; its watch event may now look like nothing new.
                    return new ControllerResult(TimeSpan.Zero);
                }
            }
        }

        var requeue = options.Resync;
        if (status.NextScheduleTime is { } next && next - now + TimeSpan.FromSeconds(1) < requeue)
        {
            requeue = TimeSpan.FromTicks(Math.Max(TimeSpan.FromSeconds(1).Ticks, (next - now + TimeSpan.FromSeconds(1)).Ticks));
        }

        return new ControllerResult(requeue);
    }

    /// <summary>
    /// Puts the value of each <c>env[].valueFrom.secretKeyRef</c> of <paramref name="manifest"/> into that entry's
    /// <c>value</c>, reading the Secret from the task's namespace, when the source resolves Secrets; returns why an
    /// entry could not be resolved (never the value). Without <see cref="KubernetesSourceOptions.ResolveSecrets"/>
    /// every reference is refused and no Secret is read.
    /// </summary>
    private async Task<IReadOnlyList<FieldError>> ResolveSecretsAsync(TaskId name, JsonObject manifest, CancellationToken cancellationToken)
    {
        if (manifest["spec"]?["env"] is not JsonArray env)
        {
            return [];
        }

        var refused = new List<FieldError>();
        for (var i = 0; i < env.Count; i++)
        {
            if (env[i] is not JsonObject entry || entry["valueFrom"]?["secretKeyRef"] is not JsonObject reference)
            {
                continue;
            }

            var path = $"spec.env[{i}].valueFrom.secretKeyRef";
            entry.Remove("value");
            if (!options.ResolveSecrets)
            {
                refused.Add(new FieldError(path, "Kubernetes Secret references are resolved only when the operator runs with --resolve-secrets " +
                    "(the value is then written into the task's spec in Consul); use valueFrom.file to keep the value on the nodes"));
                continue;
            }

            if (reference["name"] is not JsonValue secretName || secretName.GetValueKind() != System.Text.Json.JsonValueKind.String
                || reference["key"] is not JsonValue secretKey || secretKey.GetValueKind() != System.Text.Json.JsonValueKind.String
                || KubernetesNames.CheckDnsLabel(name.Namespace) is not null)
            {
                continue; // The validator names what is malformed.
            }

            var (secret, key) = (secretName.GetValue<string>(), secretKey.GetValue<string>());
            IDictionary<string, byte[]>? data;
            try
            {
                data = await api.ReadSecretDataAsync(name.Namespace, secret, cancellationToken).ConfigureAwait(false);
            }
            catch (HttpOperationException e) when (e.Response.StatusCode is HttpStatusCode.Forbidden or HttpStatusCode.Unauthorized)
            {
                refused.Add(new FieldError(path, $"the operator may not read Secret '{secret}' in namespace '{name.Namespace}' ({(int)e.Response.StatusCode}): " +
                    "give its service account get on secrets (Helm: operator.resolveSecrets=true)"));
                continue;
            }

            if (data is null)
            {
                refused.Add(new FieldError(path, $"Secret '{secret}' does not exist in namespace '{name.Namespace}'"));
            }
            else if (!data.TryGetValue(key, out var bytes))
            {
                refused.Add(new FieldError(path, $"Secret '{secret}' has no key '{key}'"));
            }
            else
            {
                try
                {
                    entry["value"] = StrictUtf8.GetString(bytes);
                }
                catch (System.Text.DecoderFallbackException)
                {
                    refused.Add(new FieldError(path, $"the value of key '{key}' of Secret '{secret}' is not UTF-8 text"));
                }
            }
        }

        return refused;
    }

    private static readonly System.Text.UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>The object waits for its finalizers: remove its spec from Consul, then the finalizer.</summary>
    private async Task<ControllerResult> FinalizeAsync(ScheduledTaskObject item, CancellationToken cancellationToken)
    {
        if (!item.HasCleanupFinalizer)
        {
            return ControllerResult.Done;
        }

        var name = item.Name;
        if (KubernetesNames.CheckDnsLabel(name.Namespace) is null && KubernetesNames.CheckDnsLabel(name.Name) is null)
        {
            await reconciler.DeleteOneAsync(TaskOwner.Kubernetes, name.Namespace, name.Name, cancellationToken: cancellationToken).ConfigureAwait(false);
            var left = await observations.ReadAsync(name.Namespace, name.Name, cancellationToken).ConfigureAwait(false);
            if (left.Envelope?.Owner == TaskOwner.Kubernetes)
            {
                // Still ours in Consul (it kept changing while being deleted): the finalizer stays until it is gone.
                return Failed(name, "Consul", $"{name} is still in Consul");
            }
        }

        await PatchFinalizersAsync(item, add: false, cancellationToken).ConfigureAwait(false);
        OperatorLog.Finalized(logger, name);
        return ControllerResult.Done;
    }

    /// <summary>Adds or removes the cleanup finalizer with a JSON patch that first tests the resource version.</summary>
    private async Task<ScheduledTaskObject?> PatchFinalizersAsync(ScheduledTaskObject item, bool add, CancellationToken cancellationToken)
    {
        var patch = new JsonArray();
        if (item.ResourceVersion is { } version)
        {
            patch.Add(new JsonObject { ["op"] = "test", ["path"] = "/metadata/resourceVersion", ["value"] = version });
        }

        if (add)
        {
            patch.Add(item.Json["metadata"]?["finalizers"] is JsonArray
                ? new JsonObject { ["op"] = "add", ["path"] = "/metadata/finalizers/-", ["value"] = ScheduledTaskObject.CleanupFinalizer }
                : new JsonObject { ["op"] = "add", ["path"] = "/metadata/finalizers", ["value"] = new JsonArray(ScheduledTaskObject.CleanupFinalizer) });
        }
        else
        {
            for (var i = item.Finalizers.Count - 1; i >= 0; i--)
            {
                if (item.Finalizers[i] == ScheduledTaskObject.CleanupFinalizer)
                {
                    patch.Add(new JsonObject { ["op"] = "remove", ["path"] = $"/metadata/finalizers/{i}" });
                }
            }
        }

        var patched = await api.JsonPatchAsync(item.Name, patch, cancellationToken).ConfigureAwait(false);
        if (patched is null || (patched.Deleting && patched.Finalizers.Count == 0))
        {
            // The last finalizer is gone: so is the object.
            cache.Remove(item.Name);
        }
        else
        {
            cache.PutAnswer(item.ResourceVersion, patched);
        }

        return patched;
    }
}
