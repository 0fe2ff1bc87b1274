using System.CommandLine;
using Dtask.Consul;
using Dtask.Consul.Configuration;
using Dtask.Consul.Errors;
using Dtask.Core.State;

namespace Dtask.Cli.Commands.Tasks;

/// <summary>
/// The <c>--consul</c> and <c>--prefix</c> options every Consul-backed command takes, on top of the standard
/// <c>CONSUL_*</c> variables, and the mapping of Consul failures to one line on stderr and an exit code.
/// </summary>
internal sealed class ConsulConnection
{
    /// <summary>Exit code when Consul cannot be reached (<c>EX_UNAVAILABLE</c>).</summary>
    public const int Unavailable = 69;

    /// <summary>Exit code when the ACL token may not do what was asked (<c>EX_NOPERM</c>).</summary>
    public const int PermissionDenied = 77;

    public Option<string?> Address { get; } = new("--consul")
    {
        Description = "The Consul agent: host:port, http://host:port or https://host:port. Default: CONSUL_HTTP_ADDR, else 127.0.0.1:8500.",
    };

    public Option<string> Prefix { get; } = new("--prefix")
    {
        Description = "The KV prefix dtask keeps its keys under.",
        DefaultValueFactory = _ => KvLayout.DefaultPrefix,
    };

    /// <summary>Adds both options to <paramref name="command"/>.</summary>
    public void AddTo(Command command)
    {
        command.Options.Add(Address);
        command.Options.Add(Prefix);
    }

    /// <summary>The client options: the <c>CONSUL_*</c> variables, with <c>--consul</c> in place of <c>CONSUL_HTTP_ADDR</c>.</summary>
    public ConsulClientOptions ClientOptions(ParseResult parseResult)
    {
        var address = parseResult.GetValue(Address);
        return ConsulEnvironment.Read(name => name == ConsulEnvironment.HttpAddr && !string.IsNullOrEmpty(address)
            ? address
            : Environment.GetEnvironmentVariable(name));
    }

    /// <summary>The KV layout of <c>--prefix</c>.</summary>
    public KvLayout Layout(ParseResult parseResult) => new(parseResult.GetValue(Prefix) ?? KvLayout.DefaultPrefix);

    /// <summary>
    /// Runs <paramref name="body"/> with a client; Consul failures become one line on stderr and an exit code
    /// (69 unreachable, 77 permission denied, 1 otherwise; 2 for a bad <c>CONSUL_*</c> setting).
    /// </summary>
    public async Task<int> RunAsync(string command, ParseResult parseResult, Func<ConsulClient, KvLayout, Task<int>> body)
    {
        var error = parseResult.InvocationConfiguration.Error;
        try
        {
            using var client = new ConsulClient(ClientOptions(parseResult));
            return await body(client, Layout(parseResult)).ConfigureAwait(false);
        }
        catch (ConsulConfigurationException e)
        {
            error.WriteLine($"dtask {command}: {e.Message}");
            return Program.UsageError;
        }
        catch (Exception e) when (e is ConsulUnreachableException or ConsulTlsException or ConsulNoLeaderException)
        {
            error.WriteLine($"dtask {command}: Consul is unreachable: {e.Message}");
            return Unavailable;
        }
        catch (ConsulPermissionDeniedException e)
        {
            error.WriteLine($"dtask {command}: permission denied: {e.Message}");
            return PermissionDenied;
        }
        catch (ConsulServerException e)
        {
            error.WriteLine($"dtask {command}: Consul is unavailable: {e.Message}");
            return Unavailable;
        }
        catch (ConsulException e)
        {
            error.WriteLine($"dtask {command}: {e.Message}");
            return Program.Failure;
        }
    }
}

/// <summary>A task named on the command line as <c>NS/NAME</c> (or <c>NAME</c> in the default namespace).</summary>
internal sealed record TaskArgument(string Namespace, string Name)
{
    public override string ToString() => $"{Namespace}/{Name}";

    /// <summary>The argument of every single-task command.</summary>
    public static Argument<string> Create() => new("task") { Description = "The task as NAMESPACE/NAME (or NAME in namespace default)." };

    public static bool TryParse(string text, out TaskArgument task, out string problem)
    {
        var parts = text.Split('/');
        (string ns, string name) = parts.Length switch
        {
            1 => (Core.Model.ObjectMeta.DefaultNamespace, parts[0]),
            2 => (parts[0], parts[1]),
            _ => ("", ""),
        };
        task = new TaskArgument(ns, name);
        problem = "";
        if (Core.Validation.KubernetesNames.CheckDnsLabel(ns) is { } nsError)
        {
            problem = $"'{text}' is not NAMESPACE/NAME: the namespace {nsError}";
        }
        else if (Core.Validation.KubernetesNames.CheckDnsLabel(name) is { } nameError)
        {
            problem = $"'{text}' is not NAMESPACE/NAME: the name {nameError}";
        }

        return problem.Length == 0;
    }
}
