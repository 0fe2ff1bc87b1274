using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Dtask.Consul;
using Dtask.Core.Manifests;
using Dtask.Core.State;
using Dtask.Operator.Sources.Kubernetes;
using Dtask.Operator.Tests.Support;
using Dtask.Testing.Kubernetes;

namespace Dtask.Operator.Tests.Kubernetes;

/// <summary>A loopback API server, a KV prefix of its own, and operator replicas against the real Consul agent.</summary>
internal sealed class KubernetesScenario : IAsyncDisposable
{
    public const string Ns = "jobs";
    public static readonly KubernetesResourceType Tasks = KubernetesResourceType.ScheduledTasks;
    private readonly ConsulFixture consul;
    private readonly List<Replica> replicas = [];

    public KubernetesScenario(ConsulFixture consul)
    {
        this.consul = consul;
        Server = KubernetesApiServer.Start();
    }

    public KubernetesApiServer Server { get; }

    public KvLayout Layout { get; } = ConsulFixture.NewLayout();

    /// <summary>Every line the replicas logged, at Debug and above.</summary>
    public ConcurrentQueue<string> Logged { get; } = new();

    public static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Fast leader election and backoff, so a test sees takeovers and retries in a second or two.</summary>
    public static KubernetesSourceOptions Options(string identity, string? watchNamespace = Ns) => new()
    {
        Namespace = watchNamespace,
        LeaseNamespace = "dtask-system",
        Identity = identity,
        LeaseDuration = TimeSpan.FromSeconds(2),
        RenewDeadline = TimeSpan.FromSeconds(1.5),
        RetryPeriod = TimeSpan.FromSeconds(0.3),
        InitialBackoff = TimeSpan.FromMilliseconds(200),
        MaxBackoff = TimeSpan.FromSeconds(1),
        Resync = TimeSpan.FromMinutes(10),
    };

    public static JsonObject Spec(string every = "1h") => new() { ["every"] = every, ["command"] = new JsonArray("true") };

    public JsonObject Create(string name, JsonObject? spec = null, string ns = Ns) => Server.Create(Tasks.Manifest(ns, name, spec ?? Spec()));

    public JsonObject? Get(string name, string ns = Ns) => Server.Get(Tasks, ns, name);

    /// <summary>Starts a replica (its own Kubernetes and Consul clients, so its requests are its own).</summary>
    public async Task<Replica> StartAsync(string identity = "operator-a", KubernetesSourceOptions? options = null)
    {
        var replica = new Replica(Server.CreateClient(), consul.NewClient(), Layout, options ?? Options(identity), Logged);
        replicas.Add(replica);
        await replica.Operator.StartAsync(Ct);
        return replica;
    }

    public async Task<KvTaskSpec?> StoredAsync(string name, string ns = Ns)
    {
        var pair = (await consul.Client.Kv.GetAsync(Layout.TaskKey(ns, name), cancellationToken: Ct)).Value;
        return pair is null ? null : KvTaskSpec.Parse(pair.ValueAsString());
    }

    public Task<KvTaskSpec?> EventuallyStoredAsync(string name, Func<KvTaskSpec?, bool> done, string what) =>
        Eventually.ReturnsAsync(() => StoredAsync(name), done, what);

    public Task<JsonObject?> EventuallyObjectAsync(string name, Func<JsonObject?, bool> done, string what) =>
        Eventually.ReturnsAsync(() => Task.FromResult(Get(name)), done, what);

    /// <summary>The object's condition of <paramref name="type"/>, or null.</summary>
    public static JsonNode? Condition(JsonObject? item, string type) =>
        (item?["status"]?["conditions"] as JsonArray)?.FirstOrDefault(c => c?["type"]?.GetValue<string>() == type);

    /// <summary>Waits until the replica has reconciled everything and nothing moves for a while.</summary>
    public static async Task SettledAsync(Replica replica)
    {
        var last = -1L;
        var stableSince = TimeProvider.System.GetTimestamp();
        await Eventually.TrueAsync(() =>
        {
            var now = replica.Operator.Reconciles + replica.Operator.StatusWrites * 1_000_000;
            if (now != last)
            {
                last = now;
                stableSince = TimeProvider.System.GetTimestamp();
                return false;
            }

            return TimeProvider.System.GetElapsedTime(stableSince) > TimeSpan.FromMilliseconds(400);
        }, "the operator to settle");
    }

    /// <summary>
    /// Waits until the leader has renewed its Lease <paramref name="times"/> more times: that many retry periods have gone
    /// by on the leader's own progress, not on a fixed sleep.
    /// </summary>
    public async Task LeaseRenewedAsync(int times)
    {
        var last = RenewTime();
        var seen = 0;
        await Eventually.TrueAsync(() =>
        {
            var now = RenewTime();
            if (now != last)
            {
                last = now;
                seen++;
            }

            return seen >= times;
        }, $"{times} renewals of the lease");
    }

    private string? RenewTime() =>
        Server.Get(KubernetesResourceType.Leases, "dtask-system", "dtask-operator")?["spec"]?["renewTime"]?.ToString();

    public async ValueTask DisposeAsync()
    {
        foreach (var replica in replicas)
        {
            await replica.DisposeAsync();
        }

        await Server.DisposeAsync();
    }

    /// <summary>One operator replica.</summary>
    internal sealed class Replica : IAsyncDisposable
    {
        private readonly k8s.Kubernetes kubernetes;
        private bool stopped;

        public Replica(k8s.Kubernetes kubernetes, ConsulClient consul, KvLayout layout, KubernetesSourceOptions options, ConcurrentQueue<string>? logged = null)
        {
            this.kubernetes = kubernetes;
            Consul = consul;
            Operator = new KubernetesOperator(kubernetes, consul, layout, options, loggers: TestOutputLog.Factory(logged));
        }

        public KubernetesOperator Operator { get; }

        public ConsulClient Consul { get; }

        public async Task StopAsync()
        {
            if (stopped)
            {
                return;
            }

            stopped = true;
            await Operator.StopAsync(CancellationToken.None);
            Operator.Dispose();
        }

        public async ValueTask DisposeAsync()
        {
            await StopAsync();
            kubernetes.Dispose();
            Consul.Dispose();
        }
    }
}
