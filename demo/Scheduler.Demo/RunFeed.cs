using Dtask.Consul;
using Dtask.Consul.Blocking;
using Dtask.Consul.Http;
using Dtask.Consul.Kv;
using Dtask.Core.State;

namespace Dtask.Demo;

/// <summary>
/// Follows the run records in Consul with blocking queries and reports each finished run once, as it lands in a
/// task's history — what <c>dtask history</c> would show, for every task at once.
/// </summary>
internal sealed class RunFeed(ConsulClient client, KvLayout layout)
{
    private readonly HashSet<string> seen = new(StringComparer.Ordinal);

    /// <summary>Finished runs, each once, oldest first within a batch, until <paramref name="cancellationToken"/> fires.</summary>
    public async IAsyncEnumerable<FinishedRun> FollowAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var query = new BlockingQuery<IReadOnlyList<KvPair>>(
            (q, ct) => client.Kv.ListAsync(layout.StatePrefix, q, ct),
            new BlockingQueryOptions { WaitTime = TimeSpan.FromSeconds(5) });
        while (!cancellationToken.IsCancellationRequested)
        {
            IReadOnlyList<KvPair> pairs;
            try
            {
                pairs = (await query.NextAsync(cancellationToken).ConfigureAwait(false)).Value;
            }
            catch (OperationCanceledException)
            {
                yield break;
            }
            catch (Dtask.Consul.Errors.ConsulException)
            {
                continue;
            }

            var fresh = new List<FinishedRun>();
            foreach (var pair in pairs)
            {
                if (!pair.Key.Contains("/history/", StringComparison.Ordinal) || !seen.Add(pair.Key))
                {
                    continue;
                }

                var record = StateJson.TryDeserialize<RunRecord>(pair.ValueAsString());
                if (record is null)
                {
                    continue;
                }

                var rest = pair.Key[layout.StatePrefix.Length..];
                var task = rest[..rest.IndexOf("/history/", StringComparison.Ordinal)];
                fresh.Add(new FinishedRun(task, record));
            }

            foreach (var run in fresh.OrderBy(r => r.Record.Slot))
            {
                yield return run;
            }
        }
    }
}

/// <summary>A finished run (or a skipped or missed slot) of a task, <c>ns/name</c>.</summary>
internal sealed record FinishedRun(string Task, RunRecord Record);
