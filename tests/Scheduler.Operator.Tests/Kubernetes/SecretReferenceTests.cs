using System.Text;
using System.Text.Json.Nodes;
using Dtask.Operator.Tests.Support;
using Dtask.Testing.Kubernetes;

namespace Dtask.Operator.Tests.Kubernetes;

/// <summary>
/// <c>env[].valueFrom.secretKeyRef</c> in the Kubernetes source, against the loopback API server and the real Consul
/// agent: refused (Ready=False, the field named, no Secret read) unless the operator resolves Secrets; then the value
/// reaches the spec in Consul, and no log line or status carries it.
/// </summary>
public sealed class SecretReferenceTests(ConsulFixture consul) : IAsyncLifetime
{
    private const string Ns = KubernetesScenario.Ns;
    private const string Password = "s3cr3t-Pa55word-7c1e";
    private readonly KubernetesScenario scenario = new(consul);

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public ValueTask DisposeAsync() => scenario.DisposeAsync();

    [Fact]
    public async Task Without_resolve_secrets_a_secret_reference_gets_Ready_False_naming_the_field_and_no_Secret_is_read()
    {
        CreateSecret("db", Password);
        scenario.Create("uses-secret", SpecWithSecret("db", "password"));
        await using var replica = await scenario.StartAsync();

        var item = await scenario.EventuallyObjectAsync("uses-secret", o => KubernetesScenario.Condition(o, "Ready") is not null, "the object's status");
        var ready = KubernetesScenario.Condition(item, "Ready")!;

        Assert.Equal(("False", "Invalid"), (ready["status"]!.GetValue<string>(), ready["reason"]!.GetValue<string>()));
        Assert.Contains("spec.env[0].valueFrom.secretKeyRef: Kubernetes Secret references are resolved only when the operator runs with --resolve-secrets",
            ready["message"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Null(await scenario.StoredAsync("uses-secret"));
        Assert.DoesNotContain(scenario.Server.Requests, r => r.Path.Contains("/secrets", StringComparison.Ordinal));
    }

    [Fact]
    public async Task With_resolve_secrets_the_value_reaches_the_spec_in_Consul_and_no_log_or_status_and_a_missing_one_is_named()
    {
        CreateSecret("db", Password);
        scenario.Create("uses-secret", SpecWithSecret("db", "password"));
        scenario.Create("no-key", SpecWithSecret("db", "missing"));
        scenario.Create("no-secret", SpecWithSecret("gone", "password"));
        var options = KubernetesScenario.Options("operator-a") with { ResolveSecrets = true, Resync = TimeSpan.FromSeconds(1) };
        await using var replica = await scenario.StartAsync("operator-a", options);

        var stored = await scenario.EventuallyStoredAsync("uses-secret", s => s is not null, "the resolved spec");
        var env = Assert.Single(stored!.Spec.Env!);
        Assert.Equal(("DB_PASSWORD", Password, "db", "password"), (env.Name, env.Value, env.ValueFrom!.SecretKeyRef!.Name, env.ValueFrom.SecretKeyRef.Key));
        var ok = await scenario.EventuallyObjectAsync("uses-secret", o => KubernetesScenario.Condition(o, "Ready") is not null, "the object's status");
        Assert.Equal("True", KubernetesScenario.Condition(ok, "Ready")!["status"]!.GetValue<string>());

        var noKey = await scenario.EventuallyObjectAsync("no-key", o => KubernetesScenario.Condition(o, "Ready") is not null, "no-key's status");
        var noSecret = await scenario.EventuallyObjectAsync("no-secret", o => KubernetesScenario.Condition(o, "Ready") is not null, "no-secret's status");
        Assert.Equal("spec.env[0].valueFrom.secretKeyRef: Secret 'db' has no key 'missing'", KubernetesScenario.Condition(noKey, "Ready")!["message"]!.GetValue<string>());
        Assert.Equal($"spec.env[0].valueFrom.secretKeyRef: Secret 'gone' does not exist in namespace '{Ns}'", KubernetesScenario.Condition(noSecret, "Ready")!["message"]!.GetValue<string>());
        Assert.Null(await scenario.StoredAsync("no-key"));
        Assert.Null(await scenario.StoredAsync("no-secret"));

        // A changed Secret reaches Consul at the next resync.
        scenario.Server.MergePatch(KubernetesResourceType.Secrets, Ns, "db", new JsonObject { ["data"] = new JsonObject { ["password"] = Base64("rotated-Pa55") } });
        await scenario.EventuallyStoredAsync("uses-secret", s => s?.Spec.Env?[0].Value == "rotated-Pa55", "the rotated value");

        // Never in a log line, nor in what the operator wrote to Kubernetes.
        await KubernetesScenario.SettledAsync(replica);
        foreach (var value in new[] { Password, "rotated-Pa55" })
        {
            Assert.DoesNotContain(scenario.Logged, l => l.Contains(value, StringComparison.Ordinal));
            Assert.DoesNotContain(scenario.Server.Requests, r => r.Method != "GET" && r.Body.Contains(value, StringComparison.Ordinal));
            Assert.DoesNotContain(value, scenario.Get("uses-secret")!.ToJsonString(), StringComparison.Ordinal);
        }
    }

    private void CreateSecret(string name, string password) => scenario.Server.Create(new JsonObject
    {
        ["apiVersion"] = "v1",
        ["kind"] = "Secret",
        ["metadata"] = new JsonObject { ["name"] = name, ["namespace"] = Ns },
        ["type"] = "Opaque",
        ["data"] = new JsonObject { ["password"] = Base64(password) },
    });

    private static string Base64(string text) => Convert.ToBase64String(Encoding.UTF8.GetBytes(text));

    private static JsonObject SpecWithSecret(string secret, string key)
    {
        var spec = KubernetesScenario.Spec();
        spec["env"] = new JsonArray(new JsonObject
        {
            ["name"] = "DB_PASSWORD",
            ["valueFrom"] = new JsonObject { ["secretKeyRef"] = new JsonObject { ["name"] = secret, ["key"] = key } },
        });
        return spec;
    }
}
