using System.Globalization;

namespace Dtask.Demo;

/// <summary>What the demo runs: where the <c>dtask</c> build and the manifests are, how many nodes, for how long.</summary>
internal sealed record DemoOptions(string DtaskDll, string ManifestDirectory, int Nodes, TimeSpan? Duration, string WorkDirectory)
{
    /// <summary>Where the operator serves <c>dtask ui</c> (<c>--ui-port</c>, or <c>UI_PORT</c>; 8080, or a free port when 8080 is taken).</summary>
    public int UiPort { get; init; }

    public static DemoOptions Parse(IReadOnlyList<string> args, Func<string, string?> environment)
    {
        string? dtask = null;
        string? manifests = null;
        var nodes = 3;
        string? duration = environment("DURATION");
        var uiPort = environment("UI_PORT") is { Length: > 0 } port ? ParseCount(port, "UI_PORT") : 0;
        for (var i = 0; i < args.Count; i++)
        {
            var value = i + 1 < args.Count ? args[i + 1] : throw new DemoUsageException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--dtask": dtask = value; break;
                case "--manifests": manifests = value; break;
                case "--nodes": nodes = ParseCount(value, "--nodes"); break;
                case "--duration": duration = value; break;
                case "--ui-port": uiPort = ParseCount(value, "--ui-port"); break;
                default: throw new DemoUsageException($"unknown option {args[i]}");
            }

            i++;
        }

        if (dtask is null || !File.Exists(dtask))
        {
            throw new DemoUsageException($"--dtask must name the built dtask.dll (got '{dtask}'); run it through `make run`");
        }

        if (manifests is null || !Directory.Exists(manifests))
        {
            throw new DemoUsageException($"--manifests must name a directory of ScheduledTask manifests (got '{manifests}')");
        }

        TimeSpan? limit = string.IsNullOrWhiteSpace(duration) ? null : TimeSpan.FromSeconds(ParseCount(duration, "DURATION"));
        var work = Path.Combine(Path.GetTempPath(), "dtask-demo-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
        return new DemoOptions(Path.GetFullPath(dtask), Path.GetFullPath(manifests), nodes, limit, work) { UiPort = uiPort > 0 ? uiPort : FreeOr(8080) };
    }

    private static int FreeOr(int preferred)
    {
        foreach (var port in new[] { preferred, 0 })
        {
            try
            {
                var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, port);
                listener.Start();
                var bound = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
                listener.Stop();
                return bound;
            }
            catch (System.Net.Sockets.SocketException)
            {
                // Taken: a free one.
            }
        }

        return preferred;
    }

    private static int ParseCount(string text, string what) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0
            ? n
            : throw new DemoUsageException($"{what} must be a positive whole number (got '{text}')");
}

/// <summary>A mistake in how the demo was started.</summary>
internal sealed class DemoUsageException(string message) : Exception(message);
