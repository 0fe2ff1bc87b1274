using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using Dtask.Consul;
using Dtask.Executor.Tests.Cli;
using Dtask.Testing;

namespace Dtask.Executor.Tests.Acl;

/// <summary>
/// A Consul agent with ACLs on and <c>default_policy = "deny"</c>, whose dtask tokens are made the way
/// docs/operations.md says: the <c>consul</c> command line, with the policy files of <c>deploy/acl/</c>.
/// dtask keeps its keys under the default prefix <c>dtask/</c>, as the policy files assume.
/// </summary>
public sealed class AclFleetFixture : IAsyncLifetime
{
    private const string MasterSecret = "6a0c1e8b-2f4d-4c55-9e71-d7a5c0ffee16";
    private ConsulAgent? agent;

    public ConsulAgent Agent => agent ?? throw new InvalidOperationException("agent not started");

    /// <summary>A client with the management token, for the test's own reads.</summary>
    public ConsulClient Master() => Agent.CreateMasterClient();

    public async ValueTask InitializeAsync() =>
        agent = await ConsulAgent.StartAsync(new ConsulAgentOptions { AclMasterToken = MasterSecret }, TestContext.Current.CancellationToken);

    /// <summary>
    /// Renders <c>deploy/acl/<paramref name="file"/></c> (each <c>${name}</c> of <paramref name="placeholders"/>
    /// replaced), creates it as policy <paramref name="policy"/> and a token carrying it, both with the <c>consul</c>
    /// command line, and returns the token's secret.
    /// </summary>
    public async Task<string> TokenAsync(string file, string policy, IReadOnlyDictionary<string, string>? placeholders = null)
    {
        var rules = await File.ReadAllTextAsync(RepositoryRoot.Combine("deploy", "acl", file), TestContext.Current.CancellationToken);
        foreach (var (name, value) in placeholders ?? new Dictionary<string, string>())
        {
            rules = rules.Replace("${" + name + "}", value, StringComparison.Ordinal);
        }

        Assert.DoesNotContain("${", rules.Split('\n').Where(l => !l.TrimStart().StartsWith('#')).Aggregate("", (a, l) => a + l), StringComparison.Ordinal);
        var rendered = Path.Combine(Path.GetTempPath(), $"dtask-acl-{policy}-{Guid.NewGuid():N}.hcl");
        await File.WriteAllTextAsync(rendered, rules, TestContext.Current.CancellationToken);
        try
        {
            await ManagementConsulAsync("acl", "policy", "create", "-name", policy, "-rules", "@" + rendered);
            var created = await ManagementConsulAsync("acl", "token", "create", "-description", "dtask " + policy, "-policy-name", policy, "-format", "json");
            using var json = JsonDocument.Parse(created);
            return json.RootElement.GetProperty("SecretID").GetString()!;
        }
        finally
        {
            File.Delete(rendered);
        }
    }

    /// <summary>The node name of the fixture's Consul agent: the session node of a daemon started without <c>--session-node</c>.</summary>
    public async Task<string> AgentNodeAsync()
    {
        using var http = ManagementHttp();
        using var self = JsonDocument.Parse(await http.GetStringAsync(new Uri(Agent.Address, "/v1/agent/self"), TestContext.Current.CancellationToken));
        return self.RootElement.GetProperty("Config").GetProperty("NodeName").GetString()!;
    }

    /// <summary>
    /// Registers <paramref name="node"/> in the Consul catalog (no agent, no checks), as terraform/modules/nodes does
    /// with a consul_node resource, for a daemon started with <c>--session-node</c>.
    /// </summary>
    public async Task RegisterCatalogNodeAsync(string node)
    {
        using var http = ManagementHttp();
        using var body = new StringContent(JsonSerializer.Serialize(new Dictionary<string, string> { ["Node"] = node, ["Address"] = "127.0.0.1" }));
        using var answer = await http.PutAsync(new Uri(Agent.Address, "/v1/catalog/register"), body, TestContext.Current.CancellationToken);
        Assert.True(answer.IsSuccessStatusCode, $"catalog register {node}: {answer.StatusCode} {await answer.Content.ReadAsStringAsync(TestContext.Current.CancellationToken)}");
    }

    private HttpClient ManagementHttp()
    {
        var http = new HttpClient();
        http.DefaultRequestHeaders.Add("X-Consul-Token", Agent.MasterToken!.Reveal());
        return http;
    }

    /// <summary>The environment that hands <paramref name="token"/> to a dtask process.</summary>
    public static IReadOnlyDictionary<string, string> WithToken(string token) => new Dictionary<string, string> { ["CONSUL_HTTP_TOKEN"] = token };

    /// <summary>Runs <c>dtask</c> with <paramref name="token"/> against the agent.</summary>
    public Task<DtaskExit> DtaskAsync(string token, params string[] arguments) =>
        DtaskProcess.RunWithAsync(WithToken(token), [.. arguments, "--consul", Agent.Address.ToString()]);

    /// <summary>Runs the <c>consul</c> command line with <paramref name="token"/> (not the management token); never fails the test itself.</summary>
    public async Task<DtaskExit> ConsulAsync(string token, params string[] arguments)
    {
        using var process = Process.Start(ConsulStart(token, arguments))!;
        var output = process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        var error = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        await process.WaitForExitAsync(TestContext.Current.CancellationToken);
        return new DtaskExit(process.ExitCode, await output, await error);
    }

    private ProcessStartInfo ConsulStart(string token, string[] arguments)
    {
        var start = new ProcessStartInfo(ConsulBinary.Locate())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["CONSUL_HTTP_ADDR"] = Agent.Address.GetLeftPart(UriPartial.Authority);
        start.Environment["CONSUL_HTTP_TOKEN"] = token;
        return start;
    }

    private async Task<string> ManagementConsulAsync(params string[] arguments)
    {
        using var process = Process.Start(ConsulStart(Agent.MasterToken!.Reveal(), arguments))!;
        var output = process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        var error = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        await process.WaitForExitAsync(TestContext.Current.CancellationToken);
        Assert.True(process.ExitCode == 0, $"consul {string.Join(' ', arguments)} failed ({process.ExitCode}): {await error}");
        return await output;
    }

    public async ValueTask DisposeAsync()
    {
        if (agent is not null)
        {
            await agent.DisposeAsync();
        }
    }
}

/// <summary>A <c>dtask operator --source dir:PATH</c> process with its output lines kept.</summary>
public sealed class OperatorProcess : IAsyncDisposable
{
    private readonly Process process;
    private readonly ConcurrentQueue<string> lines = new();

    private OperatorProcess(Process process) => this.process = process;

    public string Output => string.Join('\n', lines);

    public static OperatorProcess Start(Uri consul, string directory, string token)
    {
        var process = DtaskProcess.Start(AclFleetFixture.WithToken(token), "operator", "--source", "dir:" + directory, "--consul", consul.ToString(), "--resync", "2s");
        var started = new OperatorProcess(process);
        _ = Task.Run(async () =>
        {
            while (await process.StandardOutput.ReadLineAsync() is { } line)
            {
                started.lines.Enqueue(line);
            }
        });
        _ = Task.Run(async () =>
        {
            while (await process.StandardError.ReadLineAsync() is { } line)
            {
                started.lines.Enqueue(line);
            }
        });
        return started;
    }

    public async Task<int> StopAsync()
    {
        if (!process.HasExited)
        {
            ExecutorProcessSignals.Term(process.Id);
        }

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await process.WaitForExitAsync(timeout.Token);
        return process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync();
            }
        }
        catch (InvalidOperationException)
        {
            // Gone.
        }

        process.Dispose();
    }
}

internal static class ExecutorProcessSignals
{
    public static void Term(int pid) => Daemon.ExecutorProcess.Kill("TERM", pid);
}
