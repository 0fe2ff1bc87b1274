using Dtask.Consul.Errors;
using Dtask.Consul.Http;
using Dtask.Consul.Kv;
using Dtask.Core.Model;
using Dtask.Core.State;

namespace Dtask.Executor.Ledger;

/// <summary>The folders of the ledger an executor watches.</summary>
public enum LedgerFolder
{
    /// <summary>The task specs (<see cref="KvLayout.TasksPrefix"/>).</summary>
    Tasks,

    /// <summary>The node registrations (<see cref="KvLayout.NodesPrefix"/>).</summary>
    Nodes,

    /// <summary>The control requests: triggers and stops (<see cref="KvLayout.ControlPrefix"/>).</summary>
    Control,
}

/// <summary>The answer to a node registration: written, or refused because another live session holds the node name.</summary>
/// <param name="Registered">True when the registration was written.</param>
/// <param name="Holder">When refused: the session holding the name (null while the name is in its lock-delay).</param>
/// <param name="Meta">The answer's metadata (its server date feeds the clock guard).</param>
public sealed record NodeRegistration(bool Registered, string? Holder, ConsulResponseMeta Meta);

/// <summary>
/// The part of the ledger that is about the fleet rather than one task's runs: the task specs and control requests an
/// executor watches, the reports it writes about specs it refuses, and its node registration; and (through
/// <see cref="IFleetReader"/>) the views of task state the CLI and the UI show. Every key of it is named by
/// <see cref="KvLayout"/>; nothing outside the ledger builds one.
/// </summary>
public interface IFleetLedger : IFleetReader
{
    /// <summary>
    /// Lists <paramref name="folder"/>; with <see cref="QueryOptions.WaitIndex"/> set, a blocking query that answers once
    /// the folder's index passes it (or after <see cref="QueryOptions.WaitTime"/>). The entries are as stored: decoding
    /// them, and ignoring the ones that are garbage, is the caller's work.
    /// </summary>
    /// <exception cref="ConsulException">The ledger could not be read.</exception>
    Task<ConsulResponse<IReadOnlyList<KvPair>>> ListAsync(LedgerFolder folder, QueryOptions query, CancellationToken cancellationToken = default);

    /// <summary>
    /// Writes the placeholder that keeps the control folder from being empty (an empty folder's blocking query would wake
    /// at every write anywhere), unless it is there. Never taken for a request.
    /// </summary>
    /// <exception cref="ConsulException">The ledger could not be written.</exception>
    Task PlaceControlAnchorAsync(CancellationToken cancellationToken = default);

    /// <summary>Writes why this node refused the spec of <paramref name="task"/>, where <c>dtask describe</c> shows it.</summary>
    /// <exception cref="ConsulException">The ledger could not be written.</exception>
    Task ReportSpecRefusalAsync(TaskId task, SpecRefusal refusal, CancellationToken cancellationToken = default);

    /// <summary>
    /// Writes <paramref name="record"/> as the registration of node <see cref="NodeRecord.Node"/>, held by the session
    /// <paramref name="registrationSession"/> (so it vanishes with it). Refused, with the holder, when another live session
    /// holds the node name.
    /// </summary>
    /// <exception cref="ConsulException">The ledger could not be written.</exception>
    Task<NodeRegistration> RegisterNodeAsync(NodeRecord record, string registrationSession, CancellationToken cancellationToken = default);

    /// <summary>
    /// Replaces the spec of <paramref name="task"/> with <paramref name="json"/> only while it is at
    /// <paramref name="modifyIndex"/> (a check-and-set; 0: only when there is none). False when it changed meanwhile.
    /// </summary>
    /// <exception cref="ConsulException">The ledger could not be written.</exception>
    Task<bool> ReplaceSpecAsync(TaskId task, string json, ulong modifyIndex, CancellationToken cancellationToken = default);

    /// <summary>Removes the registration of <paramref name="node"/>.</summary>
    /// <exception cref="ConsulException">The ledger could not be written.</exception>
    Task RemoveNodeAsync(string node, CancellationToken cancellationToken = default);
}
