using System.Globalization;

namespace Dtask.Core.State;

/// <summary>
/// The Consul KV layout shared by the operator, the executors and the CLI. Every key lives under one prefix
/// (default <c>dtask/</c>); namespaces, task names and node names are DNS labels or subdomains, so no key can escape
/// its folder.
/// </summary>
/// <remarks>
/// <list type="table">
/// <item><term><c>tasks/&lt;ns&gt;/&lt;name&gt;</c></term><description>the task spec envelope (operator, <c>dtask apply</c>)</description></item>
/// <item><term><c>state/&lt;ns&gt;/&lt;name&gt;/lock</c></term><description>held by the running executor's session</description></item>
/// <item><term><c>state/&lt;ns&gt;/&lt;name&gt;/run</c></term><description>the current or last <see cref="RunRecord"/>; its ModifyIndex is the fence token</description></item>
/// <item><term><c>state/&lt;ns&gt;/&lt;name&gt;/history/&lt;slot&gt;</c></term><description>finished run records of scheduled slots, trimmed to the task's history limit</description></item>
/// <item><term><c>state/&lt;ns&gt;/&lt;name&gt;/history/manual/&lt;seq&gt;</c></term><description>finished manual runs (and dropped triggers), by the trigger key's CreateIndex (20 digits), trimmed to the same limit</description></item>
/// <item><term><c>node-labels/&lt;node&gt;</c></term><description>the labels an administrator gives a node (<c>k=v,k2=v2</c>), read by <c>executor --labels-from-consul</c></description></item>
/// <item><term><c>nodes/&lt;node&gt;</c></term><description>a live executor's <see cref="NodeRecord"/>, bound to its session (Behavior=delete)</description></item>
/// <item><term><c>control/&lt;ns&gt;/&lt;name&gt;/trigger/&lt;id&gt;</c></term><description>one pending <c>dtask trigger</c> (a <see cref="ControlRequest"/>, written with CAS 0); its CreateIndex orders and names it</description></item>
/// <item><term><c>control/&lt;ns&gt;/&lt;name&gt;/stop/&lt;runId&gt;</c></term><description>a request to stop one run (<c>Replace</c>), written with CAS 0</description></item>
/// </list>
/// </remarks>
public sealed record KvLayout
{
    /// <summary>The prefix used when none is configured.</summary>
    public const string DefaultPrefix = "dtask/";

    /// <summary>A layout under <paramref name="prefix"/>; a missing trailing slash is added.</summary>
    public KvLayout(string prefix = DefaultPrefix)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        Prefix = prefix.Length == 0 || prefix.EndsWith('/') ? prefix : prefix + "/";
    }

    /// <summary>The prefix, ending with <c>/</c> (or empty).</summary>
    public string Prefix { get; }

    /// <summary>Folder of every task spec.</summary>
    public string TasksPrefix => Prefix + "tasks/";

    /// <summary>Folder of every task's run state.</summary>
    public string StatePrefix => Prefix + "state/";

    /// <summary>Folder of live executors.</summary>
    public string NodesPrefix => Prefix + "nodes/";

    /// <summary>Folder of CLI control requests.</summary>
    public string ControlPrefix => Prefix + "control/";

    /// <summary>The spec envelope of a task.</summary>
    public string TaskKey(string @namespace, string name) => $"{TasksPrefix}{@namespace}/{name}";

    /// <summary>The folder of one task's run state (ends with <c>/</c>).</summary>
    public string TaskStatePrefix(string @namespace, string name) => $"{StatePrefix}{@namespace}/{name}/";

    /// <summary>The lock key a running executor holds.</summary>
    public string LockKey(string @namespace, string name) => TaskStatePrefix(@namespace, name) + "lock";

    /// <summary>The current or last run record.</summary>
    public string RunKey(string @namespace, string name) => TaskStatePrefix(@namespace, name) + "run";

    /// <summary>
    /// Where executors with trusted keys report that they refused the task's current spec (its signature did not
    /// verify): a <see cref="SpecRefusal"/>, written by the executors (which may write run state), read by <c>dtask describe</c>.
    /// </summary>
    public string SpecRefusalKey(string @namespace, string name) => TaskStatePrefix(@namespace, name) + "spec-refused";

    /// <summary>The folder of finished run records (ends with <c>/</c>).</summary>
    public string HistoryPrefix(string @namespace, string name) => TaskStatePrefix(@namespace, name) + "history/";

    /// <summary>The finished record of one slot. Slot ids are written in decimal; up to the year 2286 they all have ten digits, so keys sort by slot.</summary>
    public string HistoryKey(string @namespace, string name, long slot) =>
        HistoryPrefix(@namespace, name) + slot.ToString(CultureInfo.InvariantCulture);

    /// <summary>A live executor's registration.</summary>
    public string NodeKey(string node) => NodesPrefix + node;

    /// <summary>Folder of the labels administrators assign to nodes (<c>dtask executor --labels-from-consul</c>).</summary>
    public string NodeLabelsPrefix => Prefix + "node-labels/";

    /// <summary>The labels of <paramref name="node"/> as <c>k=v,k2=v2</c>, written by an administrator; the node may only read it.</summary>
    public string NodeLabelsKey(string node) => NodeLabelsPrefix + node;

    /// <summary>The folder of one task's control requests (ends with <c>/</c>).</summary>
    public string TaskControlPrefix(string @namespace, string name) => $"{ControlPrefix}{@namespace}/{name}/";

    /// <summary>A pending manual trigger of a task; <paramref name="id"/> is the request's random id.</summary>
    public string TriggerKey(string @namespace, string name, string id) => TaskControlPrefix(@namespace, name) + "trigger/" + id;

    /// <summary>A pending request to stop run <paramref name="runId"/> of a task.</summary>
    public string StopKey(string @namespace, string name, string runId) => TaskControlPrefix(@namespace, name) + "stop/" + runId;

    /// <summary>The folder of finished manual runs (ends with <c>/</c>), inside the history folder.</summary>
    public string ManualHistoryPrefix(string @namespace, string name) => HistoryPrefix(@namespace, name) + "manual/";

    /// <summary>The finished record of the manual run of the trigger whose key had CreateIndex <paramref name="sequence"/> (20 digits, so keys sort by it).</summary>
    public string ManualHistoryKey(string @namespace, string name, long sequence) =>
        ManualHistoryPrefix(@namespace, name) + sequence.ToString("D20", CultureInfo.InvariantCulture);

    /// <summary>Where the finished <paramref name="record"/> is kept: its manual key for a manual run, its slot's key otherwise.</summary>
    public string HistoryKeyOf(string @namespace, string name, RunRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        return record.TriggerIndex is { } sequence ? ManualHistoryKey(@namespace, name, sequence) : HistoryKey(@namespace, name, record.Slot);
    }

    /// <summary>
    /// Splits a key under <see cref="ControlPrefix"/> of the form <c>&lt;ns&gt;/&lt;name&gt;/(trigger|stop)/&lt;id&gt;</c>;
    /// false for any other key.
    /// </summary>
    public static bool TrySplitControlKey(string key, string folder, out string @namespace, out string name, out ControlAction action, out string id)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(folder);
        @namespace = name = id = "";
        action = ControlAction.Trigger;
        if (!key.StartsWith(folder, StringComparison.Ordinal))
        {
            return false;
        }

        var parts = key[folder.Length..].Split('/');
        if (parts.Length != 4 || parts.Any(p => p.Length == 0))
        {
            return false;
        }

        switch (parts[2])
        {
            case "trigger":
                action = ControlAction.Trigger;
                break;
            case "stop":
                action = ControlAction.Stop;
                break;
            default:
                return false;
        }

        (@namespace, name, id) = (parts[0], parts[1], parts[3]);
        return true;
    }

    /// <summary>
    /// Splits a key under <see cref="TasksPrefix"/> into namespace and name; false for
    /// any other key (including deeper ones).
    /// </summary>
    public static bool TrySplitTaskKey(string key, string folder, out string @namespace, out string name)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(folder);
        @namespace = name = "";
        if (!key.StartsWith(folder, StringComparison.Ordinal))
        {
            return false;
        }

        var rest = key.AsSpan(folder.Length);
        var slash = rest.IndexOf('/');
        if (slash <= 0 || slash == rest.Length - 1 || rest[(slash + 1)..].Contains('/'))
        {
            return false;
        }

        @namespace = rest[..slash].ToString();
        name = rest[(slash + 1)..].ToString();
        return true;
    }
}
