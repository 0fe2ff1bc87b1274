using k8s;
using k8s.Exceptions;

namespace Dtask.Operator.Sources.Kubernetes;

/// <summary>
/// How the operator reaches the API server: an explicit kubeconfig (<c>--kubeconfig</c>) first; inside a pod
/// (<c>KUBERNETES_SERVICE_HOST</c> set) the pod's service account; otherwise <c>KUBECONFIG</c> or
/// <c>~/.kube/config</c>, as kubectl does.
/// </summary>
public static class KubernetesConnection
{
    /// <summary>Builds the client configuration; throws <see cref="KubeConfigException"/> when none can be found.</summary>
    /// <param name="kubeconfig">The path given on the command line, or null.</param>
    /// <param name="environment">Reads an environment variable.</param>
    public static KubernetesClientConfiguration Resolve(string? kubeconfig, Func<string, string?> environment)
    {
        ArgumentNullException.ThrowIfNull(environment);
        if (!string.IsNullOrEmpty(kubeconfig))
        {
            return KubernetesClientConfiguration.BuildConfigFromConfigFile(kubeconfig);
        }

        if (!string.IsNullOrEmpty(environment("KUBERNETES_SERVICE_HOST")))
        {
            return KubernetesClientConfiguration.InClusterConfig();
        }

        var path = environment("KUBECONFIG") is { Length: > 0 } fromEnvironment
            ? fromEnvironment.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)[0]
            : KubernetesClientConfiguration.KubeConfigDefaultLocation;
        if (!File.Exists(path))
        {
            throw new KubeConfigException($"no kubeconfig at {path}, and not running in a pod (KUBERNETES_SERVICE_HOST is unset); use --kubeconfig");
        }

        return KubernetesClientConfiguration.BuildConfigFromConfigFile(path);
    }

    /// <summary>
    /// The namespace of the Lease when none is given: <c>POD_NAMESPACE</c>, else the pod's service-account namespace
    /// file, else <c>default</c>.
    /// </summary>
    public static string LeaseNamespace(Func<string, string?> environment)
    {
        ArgumentNullException.ThrowIfNull(environment);
        if (environment("POD_NAMESPACE") is { Length: > 0 } given)
        {
            return given;
        }

        const string serviceAccountNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";
        return File.Exists(serviceAccountNamespace) && File.ReadAllText(serviceAccountNamespace).Trim() is { Length: > 0 } mounted ? mounted : "default";
    }

    /// <summary>This replica's identity in the Lease: <c>POD_NAME</c>, else the host name.</summary>
    public static string Identity(Func<string, string?> environment)
    {
        ArgumentNullException.ThrowIfNull(environment);
        return environment("POD_NAME") is { Length: > 0 } pod ? pod : Environment.MachineName;
    }
}
