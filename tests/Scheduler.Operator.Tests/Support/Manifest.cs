using Dtask.Core.Manifests;
using Dtask.Core.Model;

namespace Dtask.Operator.Tests.Support;

/// <summary>Manifests for tests.</summary>
internal static class Manifest
{
    public static string Yaml(string ns, string name, string every = "1m", string command = "true", string extra = "") => $"""
        apiVersion: dtask.dev/v1alpha1
        kind: ScheduledTask
        metadata:
          name: {name}
          namespace: {ns}
        spec:
          every: {every}
          command: ["{command}"]{extra}
        """;

    /// <summary>A document whose name is readable but whose spec is invalid (no schedule).</summary>
    public static string InvalidYaml(string ns, string name) => $"""
        apiVersion: dtask.dev/v1alpha1
        kind: ScheduledTask
        metadata:
          name: {name}
          namespace: {ns}
        spec:
          command: ["true"]
        """;

    public static ManifestDocument Document(string ns, string name, string every = "1m", string command = "true") =>
        Assert.Single(ManifestReader.ReadText(Yaml(ns, name, every, command), $"{ns}-{name}.yaml"));

    public static ManifestDocument InvalidDocument(string ns, string name) =>
        Assert.Single(ManifestReader.ReadText(InvalidYaml(ns, name), $"{ns}-{name}.yaml"));

    public static ScheduledTask Task(string ns, string name, string every = "1m", long? generation = null) => new()
    {
        Metadata = new ObjectMeta { Name = name, Namespace = ns, Generation = generation },
        Spec = new ScheduledTaskSpec { Every = every, Command = ["true"] },
    };
}

/// <summary>Waits for a condition with a deadline, polling.</summary>
internal static class Eventually
{
    public static async Task<T> ReturnsAsync<T>(Func<Task<T>> probe, Func<T, bool> done, string what, TimeSpan? timeout = null)
    {
        var deadline = TimeProvider.System.GetUtcNow() + (timeout ?? TimeSpan.FromSeconds(15));
        while (true)
        {
            var value = await probe();
            if (done(value))
            {
                return value;
            }

            if (TimeProvider.System.GetUtcNow() > deadline)
            {
                Assert.Fail($"timed out waiting for {what}; last value: {value}");
            }

            await System.Threading.Tasks.Task.Delay(50, TestContext.Current.CancellationToken);
        }
    }

    public static Task TrueAsync(Func<bool> condition, string what, TimeSpan? timeout = null) =>
        ReturnsAsync(() => System.Threading.Tasks.Task.FromResult(condition()), v => v, what, timeout);
}
