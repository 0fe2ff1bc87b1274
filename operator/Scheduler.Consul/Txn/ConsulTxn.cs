using System.Net;
using System.Text.Json;
using Dtask.Consul.Errors;
using Dtask.Consul.Http;
using Dtask.Consul.Kv;

namespace Dtask.Consul.Txn;

/// <summary>The transaction endpoint (<c>PUT /v1/txn</c>), KV operations only.</summary>
public sealed class ConsulTxn
{
    /// <summary>Consul's limit of operations in one transaction.</summary>
    public const int MaxOperations = 64;

    private const string Endpoint = "PUT /v1/txn";
    private readonly ConsulTransport transport;

    internal ConsulTxn(ConsulTransport transport) => this.transport = transport;

    /// <summary>
    /// Runs the operations. A rollback is not an exception: the result says which operation failed and why
    /// (call <see cref="TxnResult.ThrowIfRolledBack"/> to make it one). Never retried: on a timeout or 5xx the
    /// outcome is unknown, so re-read. Each request counts as one write, unless every operation only reads.
    /// </summary>
    /// <exception cref="ConsulPermissionDeniedException">The token may not read or write a key of an operation (Consul's 409
    /// naming "Permission denied"); the exception's subject is that key. Nothing was applied.</exception>
    /// <exception cref="ConsulTooLargeException">More than <see cref="MaxOperations"/> operations with
    /// <see cref="TxnAtomicity.RequireAtomic"/> (nothing is sent), or the agent refused the body's size.</exception>
    public Task<ConsulResponse<TxnResult>> ExecuteAsync(IReadOnlyList<TxnOp> operations, TxnAtomicity atomicity = TxnAtomicity.RequireAtomic, CancellationToken cancellationToken = default) =>
        ExecuteAsync(operations, atomicity, null, cancellationToken);

    /// <summary>
    /// Runs read operations only (get, get-tree, checks) as one read-only transaction with <paramref name="consistency"/>:
    /// Consul answers a read-only transaction in the consistency mode asked, so <see cref="ConsistencyMode.Consistent"/>
    /// reads every key linearizably at the cost of one leader check for all of them.
    /// </summary>
    /// <exception cref="ArgumentException">An operation writes, or there are more than <see cref="MaxOperations"/>.</exception>
    public Task<ConsulResponse<TxnResult>> ReadAsync(IReadOnlyList<TxnOp> operations, ConsistencyMode consistency, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(operations);
        if (operations.Count > MaxOperations || operations.Any(op => WriteOrRead(op) != "read"))
        {
            throw new ArgumentException($"a read-only transaction has at most {MaxOperations} read operations", nameof(operations));
        }

        return ExecuteAsync(operations, TxnAtomicity.RequireAtomic, new QueryOptions { Consistency = consistency }, cancellationToken);
    }

    private async Task<ConsulResponse<TxnResult>> ExecuteAsync(IReadOnlyList<TxnOp> operations, TxnAtomicity atomicity, QueryOptions? read, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(operations);
        if (operations.Count == 0)
        {
            throw new ArgumentException("a transaction needs at least one operation", nameof(operations));
        }
        if (operations.Count > MaxOperations && atomicity == TxnAtomicity.RequireAtomic)
        {
            throw new ConsulTooLargeException(Endpoint,
                $"transaction of {operations.Count} operations exceeds Consul's limit of {MaxOperations} and must be atomic; nothing was sent");
        }

        var results = new List<KvPair>();
        ConsulResponseMeta? lastMeta = null;
        var batches = 0;
        for (var start = 0; start < operations.Count; start += MaxOperations)
        {
            var batch = operations.Skip(start).Take(MaxOperations).ToList();
            var (raw, wire) = await SendBatchAsync(batch, read, cancellationToken).ConfigureAwait(false);
            lastMeta = raw.Meta;
            foreach (var result in wire?.Results ?? [])
            {
                if (result?.Kv is { } pair)
                {
                    results.Add(pair.Key is null ? throw raw.Malformed("a result without a Key", null) : KvPair.FromWire(pair));
                }
            }
            if (raw.Status == HttpStatusCode.Conflict)
            {
                var errors = (wire?.Errors ?? []).FindAll(e => e is not null).ConvertAll(e => new TxnOpError(
                    start + e.OpIndex, e.OpIndex >= 0 && e.OpIndex < batch.Count ? batch[e.OpIndex] : null, e.What));
                if (errors.Find(e => IsPermissionDenied(e.Reason)) is { } refused)
                {
                    // Consul checks ACLs before it applies anything and answers 409 with "Permission denied" per operation:
                    // that is a refusal, not a rollback to retry.
                    var key = refused.Operation?.Key ?? "?";
                    throw new ConsulPermissionDeniedException(key,
                        $"{WriteOrRead(refused.Operation)} key '{key}' was refused: permission denied, the ACL token does not allow it (HTTP 409 from PUT /v1/txn: {refused.Reason})");
                }
                return new ConsulResponse<TxnResult>(new TxnResult(false, results, errors, batches), raw.Meta);
            }
            batches++;
        }
        return new ConsulResponse<TxnResult>(new TxnResult(true, results, [], batches), lastMeta!);
    }

    private static bool IsPermissionDenied(string reason) =>
        reason.Contains("Permission denied", StringComparison.OrdinalIgnoreCase) || reason.Contains("ACL not found", StringComparison.OrdinalIgnoreCase);

    private static string WriteOrRead(TxnOp? operation) => operation?.Verb switch
    {
        TxnVerb.Get or TxnVerb.GetTree or TxnVerb.CheckIndex or TxnVerb.CheckNotExists or TxnVerb.CheckSession => "read",
        _ => "write",
    };

    private async Task<(ConsulRawResponse Raw, TxnResponseWire? Wire)> SendBatchAsync(List<TxnOp> batch, QueryOptions? read, CancellationToken cancellationToken)
    {
        var body = JsonSerializer.SerializeToUtf8Bytes(batch.ConvertAll(op => op.ToWire()), ConsulJsonContext.Default.ListTxnOpWire);
        var subject = batch.Count == 1 ? $"{Endpoint} ({batch[0]})" : $"{Endpoint} ({batch.Count} operations from {batch[0]})";
        var request = new ConsulRequest(HttpMethod.Put, "/v1/txn", "run transaction", subject)
        {
            Body = body,
            Read = read,
            ReadsOnly = batch.TrueForAll(op => WriteOrRead(op) == "read"),
            Accepted = [HttpStatusCode.Conflict],
        };
        var raw = await transport.SendAsync(request, cancellationToken).ConfigureAwait(false);
        var wire = raw.Body.Length == 0 ? null : raw.Decode(ConsulJsonContext.Default.TxnResponseWire);
        return (raw, wire);
    }
}
