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
/// <item><term><c>state/&lt;ns&gt;/&lt;name&gt;/history/&lt;slot&gt;</c></term><description>finished run records, trimmed to the task's history limit</description></item>
/// <item><term><c>nodes/&lt;node&gt;</c></term><description>a live executor's <see cref="NodeRecord"/>, bound to its session (Behavior=delete)</description></item>
/// <item><term><c>control/&lt;ns&gt;/&lt;name&gt;</c></term><description>a <see cref="ControlRequest"/> from the CLI (trigger, stop)</description></item>
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

    /// <summary>The folder of finished run records (ends with <c>/</c>).</summary>
    public string HistoryPrefix(string @namespace, string name) => TaskStatePrefix(@namespace, name) + "history/";

    /// <summary>The finished record of one slot. Slot ids are written in decimal; up to the year 2286 they all have ten digits, so keys sort by slot.</summary>
    public string HistoryKey(string @namespace, string name, long slot) =>
        HistoryPrefix(@namespace, name) + slot.ToString(CultureInfo.InvariantCulture);

    /// <summary>A live executor's registration.</summary>
    public string NodeKey(string node) => NodesPrefix + node;

    /// <summary>The control request of a task.</summary>
    public string ControlKey(string @namespace, string name) => $"{ControlPrefix}{@namespace}/{name}";

    /// <summary>
    /// Splits a key under <see cref="TasksPrefix"/> or <see cref="ControlPrefix"/> into namespace and name; false for
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
