using System.Diagnostics;
using Dtask.Core.State;
using Dtask.Demo;
using Dtask.Testing;
using Spectre.Console;

// The local demo behind `make run`: a real Consul dev agent, the operator reconciling a directory of manifests, and
// several executors, all on this machine; a live table of which node fired each slot; a summary at the end.
DemoOptions options;
try
{
    options = DemoOptions.Parse(args, Environment.GetEnvironmentVariable);
}
catch (DemoUsageException e)
{
    await Console.Error.WriteLineAsync("dtask-demo: " + e.Message).ConfigureAwait(false);
    return 2;
}

using var stop = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    stop.Cancel();
};
if (options.Duration is { } limit)
{
    stop.CancelAfter(limit);
}

Directory.CreateDirectory(options.WorkDirectory);
var nodes = Enumerable.Range(0, options.Nodes).Select(i => "node-" + (char)('a' + i)).ToList();
var witness = new ChildStartWitness();
var view = new DemoView(nodes);
var interactive = AnsiConsole.Profile.Capabilities.Interactive && !Console.IsOutputRedirected;
var services = new List<ServiceProcess>();
ConsulAgent? agent = null;
var clock = Stopwatch.StartNew();
var exitCode = 0;
try
{
    Console.WriteLine("starting a Consul dev agent…");
    agent = await ConsulAgent.StartAsync(cancellationToken: stop.Token).ConfigureAwait(false);
    var consul = agent.Address.ToString().TrimEnd('/');
    var environment = new Dictionary<string, string>
    {
        ["CONSUL_HTTP_ADDR"] = consul,
        ["DTASK_LOG_FORMAT"] = "json",
        ["SLACK_WEBHOOK"] = "",
        ["DTASK_DATADOG"] = "off",
    };
    Console.WriteLine($"Consul at {consul}; logs in {options.WorkDirectory}");
    Console.WriteLine($"starting the operator on {options.ManifestDirectory} and executors {string.Join(", ", nodes)}…");
    // The operator also serves dtask ui: the executors' runs show on its timeline.
    var ui = $"http://127.0.0.1:{options.UiPort}/";
    services.Add(ServiceProcess.Start("operator", options.DtaskDll, ["operator", "--source", "dir:" + options.ManifestDirectory,
        "--ui-listen", $"127.0.0.1:{options.UiPort}", "--ui-allow-actions"], environment, Path.Combine(options.WorkDirectory, "operator.log")));
    Console.WriteLine($"dtask ui: {ui} (the timeline: {ui}#/timeline)");
    foreach (var node in nodes)
    {
        services.Add(ServiceProcess.Start(node, options.DtaskDll, ["executor", "--node", node, "--shutdown-grace", "3s", "--termination-grace", "2s"], environment,
            Path.Combine(options.WorkDirectory, node + ".log"), witness.Observe));
    }

    using var client = agent.CreateClient();
    var feed = new RunFeed(client, new KvLayout());
    if (interactive)
    {
        await AnsiConsole.Live(view.Render(clock.Elapsed, options.Duration)).StartAsync(async ctx =>
        {
            using var ticker = new PeriodicTimer(TimeSpan.FromSeconds(1));
            var refresh = Task.Run(async () =>
            {
                while (await ticker.WaitForNextTickAsync(stop.Token).ConfigureAwait(false))
                {
                    ctx.UpdateTarget(view.Render(clock.Elapsed, options.Duration));
                }
            }, stop.Token);
            await foreach (var run in feed.FollowAsync(stop.Token).ConfigureAwait(false))
            {
                view.Add(run);
                ctx.UpdateTarget(view.Render(clock.Elapsed, options.Duration));
            }

            try
            {
                await refresh.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // Stopped.
            }
        }).ConfigureAwait(false);
    }
    else
    {
        await foreach (var run in feed.FollowAsync(stop.Token).ConfigureAwait(false))
        {
            view.Add(run);
            Console.WriteLine(DemoView.Line(run));
        }
    }
}
catch (OperationCanceledException) when (stop.IsCancellationRequested)
{
    // Ctrl-C or DURATION before everything was up.
}
catch (Exception e) when (e is InvalidOperationException or IOException or Dtask.Consul.Errors.ConsulException)
{
    await Console.Error.WriteLineAsync("dtask-demo: " + e.Message).ConfigureAwait(false);
    exitCode = 1;
}
finally
{
    Console.WriteLine("stopping the executors, the operator and Consul…");
    await Task.WhenAll(services.Where(s => s.Name != "operator").Select(s => s.StopAsync(TimeSpan.FromSeconds(15)))).ConfigureAwait(false);
    foreach (var service in services)
    {
        await service.DisposeAsync().ConfigureAwait(false);
    }

    if (agent is not null)
    {
        await agent.DisposeAsync().ConfigureAwait(false);
    }
}

Console.WriteLine();
Console.Write(DemoSummary.Write(view.All, witness, nodes, clock.Elapsed));
return exitCode != 0 ? exitCode : witness.Duplicates.Count > 0 ? 1 : 0;
