using System.Globalization;
using System.CommandLine;
using Dtask.Consul.Http;
using Dtask.Consul.Kv;
using Dtask.Core.Durations;
using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Executor.Ledger;
using Dtask.Operator.Status;

namespace Dtask.Cli.Commands.Tasks;

/// <summary>
/// One task in <c>dtask get tasks -o json|yaml</c>. The field names are stable for scripts: <c>namespace</c>,
/// <c>name</c>, <c>owner</c> (<c>cli</c>, <c>kubernetes</c>, <c>dir:PATH</c>), <c>generation</c>, <c>specHash</c>,
/// <c>schedule</c> (the cron expression, or <c>every D</c>), <c>suspend</c>, <c>spec</c> (as in the manifest) and
/// <c>status</c> (<c>observedGeneration</c>, <c>lastScheduleTime</c>, <c>lastSuccessfulTime</c>, <c>lastRun</c>
/// {<c>slot</c>, <c>node</c>, <c>startedAt</c>, <c>finishedAt</c>, <c>exitCode</c>, <c>result</c>},
/// <c>nextScheduleTime</c>, <c>conditions</c>). Times are RFC 3339 UTC; absent values are omitted.
/// </summary>
internal sealed record TaskListItem(string Namespace, string Name, string Owner, long Generation, string SpecHash, string Schedule,
    bool Suspend, ScheduledTaskSpec Spec, ScheduledTaskStatus Status);

/// <summary>The document of <c>dtask get tasks -o json</c>: <c>{"apiVersion", "kind": "ScheduledTaskList", "items": [...]}</c>.</summary>
internal sealed record TaskList
{
    public string ApiVersion { get; init; } = ScheduledTask.ApiVersionValue;

    public string Kind { get; init; } = "ScheduledTaskList";

    public required IReadOnlyList<TaskListItem> Items { get; init; }
}

/// <summary>One executor in <c>dtask get nodes -o json</c>: <c>node</c>, <c>labels</c>, <c>version</c>, <c>startedAt</c>, <c>session</c>, <c>running</c> (tasks as ns/name),
/// <c>skew</c> (seconds, the node's estimate of its clock minus its references', null when unknown) and <c>state</c> (<c>ready</c> or <c>clock-skewed</c>).</summary>
internal sealed record NodeListItem(string Node, IReadOnlyDictionary<string, string> Labels, string Version, DateTimeOffset StartedAt, string? Session, IReadOnlyList<string> Running,
    double? Skew = null, string State = NodeRecord.Ready);

/// <summary>The document of <c>dtask get nodes -o json</c>.</summary>
internal sealed record NodeList(IReadOnlyList<NodeListItem> Items);

/// <summary><c>dtask get tasks|nodes</c>: lists what Consul holds.</summary>
internal static class GetCommand
{
    public static Command Create()
    {
        var command = new Command("get", "List tasks or live executors, straight from Consul.");
        command.Subcommands.Add(Tasks());
        command.Subcommands.Add(Nodes());
        return command;
    }

    private static Command Tasks()
    {
        var ns = new Option<string?>("--namespace", "-n") { Description = "Only this namespace (default: default)." };
        var all = new Option<bool>("--all-namespaces", "-A") { Description = "Every namespace; names print as NAMESPACE/NAME." };
        var format = TableOutput.FormatOption();
        var consul = new ConsulConnection();
        var command = new Command("tasks", "List tasks: NAME, SCHEDULE, SUSPEND, LAST RUN (age), NODE, RESULT, NEXT.") { ns, all, format };
        command.Aliases.Add("task");
        command.Aliases.Add("stask");
        consul.AddTo(command);
        command.SetAction((parseResult, cancellationToken) => consul.RunAsync("get tasks", parseResult, async (client, layout) =>
        {
            var output = parseResult.InvocationConfiguration.Output;
            var allNamespaces = parseResult.GetValue(all);
            var only = parseResult.GetValue(ns) ?? ObjectMeta.DefaultNamespace;
            var now = TimeProvider.System.GetUtcNow();
            var observations = await new TaskObservationReader(client, layout).ReadAllAsync(cancellationToken).ConfigureAwait(false);
            var shown = observations.Where(o => o.Envelope is not null && (allNamespaces || o.Namespace == only)).ToList();
            foreach (var unreadable in observations.Where(o => o.Stored is { Envelope: null } && (allNamespaces || o.Namespace == only)))
            {
                parseResult.InvocationConfiguration.Error.WriteLine(
                    $"warning: {unreadable.Key}: '{layout.TaskKey(unreadable.Namespace, unreadable.Name)}' holds no readable task spec; skipped");
            }

            var items = shown.Select(o => Item(o, now)).ToList();
            if (items.Count == 0 && !allNamespaces)
            {
                // Consul leaves out of a listing what the token may not read: an empty namespace and a namespace the
                // token may not read look alike. Reading the namespace's folder tells them apart (403: exit 77).
                await using var ledger = new ConsulTaskLedger(client, layout);
                await ledger.CheckSpecsReadableAsync(only, cancellationToken).ConfigureAwait(false);
            }

            TableOutput.Write(output, parseResult.GetValue(format), new TaskList { Items = items }, () =>
            {
                if (items.Count == 0)
                {
                    parseResult.InvocationConfiguration.Error.WriteLine(allNamespaces ? "No tasks found." : $"No tasks found in namespace {only}.");
                    return;
                }

                TableOutput.WriteTable(output, ["NAME", "SCHEDULE", "SUSPEND", "LAST RUN", "NODE", "RESULT", "NEXT"], items.Select(i => (IReadOnlyList<string>)
                [
                    allNamespaces ? $"{i.Namespace}/{i.Name}" : i.Name,
                    i.Schedule,
                    i.Suspend ? "True" : "False",
                    i.Status.LastRun?.Slot is { } slot ? TableOutput.Age(now - slot) : "<none>",
                    i.Status.LastRun?.Node ?? "<none>",
                    i.Status.LastRun?.Result ?? "<none>",
                    i.Status.NextScheduleTime is { } next ? "in " + TableOutput.Age(next - now) : "<none>",
                ]));
                foreach (var o in shown.Where(o => o.OwnersProblem is not null))
                {
                    parseResult.InvocationConfiguration.Error.WriteLine(
                        $"{o.Key}: Ready=False: {string.Join("; ", o.OwnersProblem!.FieldErrors)}; Consul keeps generation {o.Envelope!.Generation}");
                }
            });
            return Program.Success;
        }));
        return command;
    }

    /// <summary>The list item of an observed task (which must have an envelope).</summary>
    public static TaskListItem Item(TaskObservation observation, DateTimeOffset now)
    {
        var envelope = observation.Envelope!;
        return new TaskListItem(observation.Namespace, observation.Name, envelope.Owner.ToString(), envelope.Generation, envelope.SpecHash,
            ScheduleText(envelope.Spec), envelope.Spec.IsSuspended, WithoutSecrets(envelope.Spec), observation.StatusAt(now));
    }

    /// <summary>The spec with the values resolved from Kubernetes Secrets left out (the reference stays): never printed.</summary>
    public static ScheduledTaskSpec WithoutSecrets(ScheduledTaskSpec spec) =>
        spec.Env is { } env && env.Any(v => v.ValueFrom?.SecretKeyRef is not null)
            ? spec with { Env = [.. env.Select(v => v.ValueFrom?.SecretKeyRef is null ? v : v with { Value = null })] }
            : spec;

    /// <summary>The cron expression, or <c>every 90s</c>.</summary>
    public static string ScheduleText(ScheduledTaskSpec spec) =>
        spec.Schedule ?? (spec.EveryDuration is { } every ? "every " + GoDuration.Format(every) : "<none>");

    private static Command Nodes()
    {
        var format = TableOutput.FormatOption();
        var consul = new ConsulConnection();
        var command = new Command("nodes", "List live executors: NODE, STATE (ready, or clock-skewed: claims and records nothing), SKEW (its clock minus its references'), LABELS, VERSION, STARTED, RUNNING (tasks whose lock the node's session holds).") { format };
        command.Aliases.Add("node");
        consul.AddTo(command);
        command.SetAction((parseResult, cancellationToken) => consul.RunAsync("get nodes", parseResult, async (client, layout) =>
        {
            var output = parseResult.InvocationConfiguration.Output;
            var now = TimeProvider.System.GetUtcNow();
            await using var ledger = new ConsulTaskLedger(client, layout);
            var items = await ReadNodesAsync(ledger, cancellationToken, parseResult.InvocationConfiguration.Error).ConfigureAwait(false);
            TableOutput.Write(output, parseResult.GetValue(format), new NodeList(items), () =>
            {
                if (items.Count == 0)
                {
                    parseResult.InvocationConfiguration.Error.WriteLine("No live executors found.");
                    return;
                }

                TableOutput.WriteTable(output, ["NODE", "STATE", "SKEW", "LABELS", "VERSION", "STARTED", "RUNNING"], items.Select(n => (IReadOnlyList<string>)
                [
                    n.Node,
                    n.State,
                    n.Skew is { } skew ? skew.ToString("+0.0;-0.0;0.0", CultureInfo.InvariantCulture) + "s" : "<unknown>",
                    n.Labels.Count == 0 ? "<none>" : string.Join(",", n.Labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => $"{l.Key}={l.Value}")),
                    n.Version,
                    TableOutput.Age(now - n.StartedAt) + " ago",
                    n.Running.Count == 0 ? "<none>" : string.Join(",", n.Running),
                ]));
            });
            return Program.Success;
        }));
        return command;
    }

    /// <summary>The live executors with the tasks whose lock their session holds.</summary>
    /// <param name="ledger">The ledger.</param>
    /// <param name="cancellationToken">Cancels the reads.</param>
    /// <param name="warnings">Where a node key that holds no node registration is named (it is left out); none when null.</param>
    public static async Task<IReadOnlyList<NodeListItem>> ReadNodesAsync(IFleetLedger ledger, CancellationToken cancellationToken, TextWriter? warnings = null)
    {
        ArgumentNullException.ThrowIfNull(ledger);
        var nodes = await ledger.ListAsync(LedgerFolder.Nodes, QueryOptions.None, cancellationToken).ConfigureAwait(false);
        var locks = (await ledger.ListHeldLocksAsync(cancellationToken).ConfigureAwait(false))
            .Select(l => ($"{l.Task.Namespace}/{l.Task.Name}", l.Session)).ToList();
        return Nodes(nodes.Value, locks, warnings);
    }

    /// <summary>The executors registered in <paramref name="nodePairs"/> (pairs under <c>nodes/</c>) with the locks of <paramref name="locks"/> their session holds.</summary>
    public static IReadOnlyList<NodeListItem> Nodes(IEnumerable<KvPair> nodePairs, IReadOnlyList<(string Task, string Session)> locks, TextWriter? warnings = null)
    {
        var items = new List<NodeListItem>();
        foreach (var pair in nodePairs)
        {
            if (StateJson.TryDecode<NodeRecord>(pair.ValueAsString(), out var problem) is not { } node)
            {
                warnings?.WriteLine($"warning: '{pair.Key}' holds no node registration ({problem}); skipped");
                continue;
            }

            var session = node.Session ?? pair.Session;
            var running = session is null ? [] : locks.Where(l => l.Session == session).Select(l => l.Task).Order(StringComparer.Ordinal).ToList();
            items.Add(new NodeListItem(node.Node, node.Labels, node.Version, node.StartedAt, session, running, node.Skew, node.State ?? NodeRecord.Ready));
        }

        return [.. items.OrderBy(n => n.Node, StringComparer.Ordinal)];
    }

    /// <summary>The held task locks among <paramref name="statePairs"/> (pairs under <c>state/</c>).</summary>
    public static IReadOnlyList<(string Task, string Session)> LockHolders(TaskObservationReader reader, KvLayout layout, IEnumerable<KvPair> statePairs)
    {
        var held = new List<(string, string)>();
        foreach (var pair in statePairs)
        {
            if (pair.Session is { } session && reader.TaskOfStateKey(pair.Key) is { } task && pair.Key == layout.LockKey(task.Namespace, task.Name))
            {
                held.Add(($"{task.Namespace}/{task.Name}", session));
            }
        }

        return held;
    }
}
