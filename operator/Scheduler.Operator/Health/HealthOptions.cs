using System.Net;

namespace Dtask.Operator.Health;

/// <summary>Where the health endpoints listen.</summary>
/// <param name="Address">The address to bind (<c>0.0.0.0</c> in a pod, <c>127.0.0.1</c> in tests).</param>
/// <param name="Port">The port; 0 picks a free one (see <see cref="HealthServer.Port"/>).</param>
public sealed record HealthOptions(string Address, int Port)
{
    /// <summary>Problems of these options, for a refusal at start; empty when usable.</summary>
    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        if (!IPAddress.TryParse(Address, out _))
        {
            problems.Add($"--health-address: '{Address}' is not an IP address");
        }

        if (Port is < 0 or > 65535)
        {
            problems.Add($"--health-port: {Port} is not a port number");
        }

        return problems;
    }
}
