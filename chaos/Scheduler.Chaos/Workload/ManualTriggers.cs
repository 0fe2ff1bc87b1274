using System.Text;
using Dtask.Consul.Errors;
using Dtask.Consul.Kv;
using Dtask.Core.State;
using Dtask.Testing;

namespace Dtask.Chaos.Workload;

/// <summary>
/// A trigger request the run wrote, as <c>dtask trigger</c> does: its own key under <c>control/</c>, CAS 0.
/// </summary>
/// <param name="Task">The task.</param>
/// <param name="Id">The request id (the key's last segment, and the child's <c>DTASK_TRIGGER</c>).</param>
/// <param name="At">When it was sent.</param>
/// <param name="Confirmed">True when Consul answered that it was written; false when no answer came (the write may or may not have committed).</param>
public sealed record SubmittedTrigger(string Task, string Id, DateTimeOffset At, bool Confirmed);

/// <summary>
/// The manual trigger stream of a chaos run: at seeded random intervals, a trigger request for one of the tasks marked
/// <see cref="ChaosTask.Triggered"/>, written through a running Consul server (any: the faults may have stopped some).
/// </summary>
public sealed class ManualTriggers(ConsulCluster cluster, KvLayout layout, IReadOnlyList<ChaosTask> tasks, int seed, TimeProvider time)
{
    /// <summary>The shortest wait between two requests.</summary>
    public static readonly TimeSpan MinInterval = TimeSpan.FromSeconds(3);

    /// <summary>The longest wait between two requests.</summary>
    public static readonly TimeSpan MaxInterval = TimeSpan.FromSeconds(9);

    private readonly List<SubmittedTrigger> sent = [];

    /// <summary>The requests sent so far.</summary>
    public IReadOnlyList<SubmittedTrigger> Sent
    {
        get
        {
            lock (sent)
            {
                return [.. sent];
            }
        }
    }

    /// <summary>Sends requests until <paramref name="until"/> (or cancellation).</summary>
    public async Task RunAsync(DateTimeOffset until, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(cluster);
        var targets = tasks.Where(t => t.Triggered).ToList();
        if (targets.Count == 0)
        {
            return;
        }

        var random = new Random(unchecked(seed * 31) + 7);
        while (!cancellationToken.IsCancellationRequested)
        {
            var wait = MinInterval + TimeSpan.FromMilliseconds(random.NextDouble() * (MaxInterval - MinInterval).TotalMilliseconds);
            if (time.GetUtcNow() + wait >= until)
            {
                return;
            }

            try
            {
                await Task.Delay(wait, time, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            var task = targets[random.Next(targets.Count)];
            var id = random.Next().ToString("x8", System.Globalization.CultureInfo.InvariantCulture) + random.Next().ToString("x8", System.Globalization.CultureInfo.InvariantCulture);
            var confirmed = await SendAsync(task, id, random, cancellationToken).ConfigureAwait(false);
            lock (sent)
            {
                sent.Add(new SubmittedTrigger(task.Name, id, time.GetUtcNow(), confirmed));
            }
        }
    }

    private async Task<bool> SendAsync(ChaosTask task, string id, Random random, CancellationToken cancellationToken)
    {
        var request = new ControlRequest { Action = ControlAction.Trigger, Id = id, RequestedAt = time.GetUtcNow(), RequestedBy = "chaos" };
        var body = Encoding.UTF8.GetBytes(StateJson.Serialize(request));
        var key = layout.TriggerKey(ChaosWorkload.Namespace, task.Name, id);
        // A server without a leader, or one that refused the connection, committed nothing: the next one may be asked. Any
        // other failure may have committed (an answer lost): the request is not sent again, as sending it after its run would
        // make it a second request. The servers are asked in a random order, so a hung one is not always the first.
        var servers = cluster.Servers.Where(s => s.IsRunning).ToArray();
        random.Shuffle(servers);
        foreach (var server in servers)
        {
            using var client = server.CreateClient(TimeSpan.FromSeconds(5));
            try
            {
                return (await client.Kv.PutAsync(key, body, new KvPutOptions { Cas = 0 }, cancellationToken).ConfigureAwait(false)).Value;
            }
            catch (ConsulNoLeaderException)
            {
                continue;
            }
            catch (ConsulUnreachableException e) when (e.InnerException is System.Net.Http.HttpRequestException { InnerException: System.Net.Sockets.SocketException { SocketErrorCode: System.Net.Sockets.SocketError.ConnectionRefused } })
            {
                continue;
            }
            catch (ConsulException)
            {
                return false;
            }
        }

        return false;
    }
}
