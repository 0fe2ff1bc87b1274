namespace Dtask.Cli.Tests.Tasks;

internal static class TaskManifests
{
    public static string Yaml(string ns, string name, string every = "1m", string extra = "") => $"""
        apiVersion: dtask.dev/v1alpha1
        kind: ScheduledTask
        metadata:
          name: {name}
          namespace: {ns}
        spec:
          every: {every}
          command: ["/usr/local/bin/{name}", "--quiet"]{extra}
        """;
}
