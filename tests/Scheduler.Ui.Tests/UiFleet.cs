using Dtask.Cli;
using Dtask.Core.State;
using Dtask.Ui.Tests.Support;
using OpenQA.Selenium.Chrome;

[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace Dtask.Ui.Tests;

/// <summary>
/// A real Consul agent, tasks applied with <c>dtask apply</c>, two <c>dtask executor</c> processes, two <c>dtask ui</c>
/// processes (one with <c>--allow-actions</c>, one without) and one headless Chromium, shared by the browser tests.
/// </summary>
public sealed class UiFleet : IAsyncLifetime
{
    public const string Namespace = "ui";

    private readonly List<DtaskProcess> executors = [];
    private ConsulAgent? agent;

    public TempDirectory Work { get; } = new("dtask-ui-test-");

    public KvLayout Layout { get; } = new(TestKvPrefix.New());

    public string Consul => agent is null ? throw new InvalidOperationException("not started") : $"{agent.Address.Host}:{agent.Address.Port}";

    /// <summary>The file the manual task's runs append their run id to.</summary>
    public string Witness => Path.Combine(Work.Path, "manual-witness");

    public Uri ActionsUi { get; private set; } = null!;

    public Uri ReadOnlyUi { get; private set; } = null!;

    public ChromeDriver Driver { get; private set; } = null!;

    public IReadOnlyList<string> Nodes { get; } = ["alpha", "beta"];

    /// <summary>What the running executors printed, for failure messages.</summary>
    public string ExecutorOutput => string.Join("\n", executors.Select((e, i) => $"--- executor {i} ---\n{e.Output}"));

    private DtaskProcess? actionsUiProcess;
    private DtaskProcess? readOnlyUiProcess;

    public async ValueTask InitializeAsync()
    {
        agent = await ConsulAgent.StartAsync(cancellationToken: TestContext.Current.CancellationToken);
        var manifests = Work.Write("tasks.yaml", $$"""
            apiVersion: dtask.dev/v1alpha1
            kind: ScheduledTask
            metadata: {name: beat, namespace: {{Namespace}}}
            spec:
              every: 2s
              command: ["true"]
              history: 100
            ---
            apiVersion: dtask.dev/v1alpha1
            kind: ScheduledTask
            metadata: {name: xss, namespace: {{Namespace}}}
            spec:
              every: 3s
              shell: "printf '<script>alert(1)</script>'"
              history: 5
            ---
            apiVersion: dtask.dev/v1alpha1
            kind: ScheduledTask
            metadata: {name: manual, namespace: {{Namespace}}}
            spec:
              schedule: "0 0 1 1 *"
              shell: 'echo "$DTASK_RUN_ID" >> {{Witness}}'
            ---
            apiVersion: dtask.dev/v1alpha1
            kind: ScheduledTask
            metadata: {name: nightly, namespace: {{Namespace}}}
            spec:
              schedule: "30 4 * * *"
              timeZone: Europe/Berlin
              command: ["true"]
              env:
                - name: API_KEY
                  value: s3cr3t-value-never-shown
              notify:
                slack: {channel: "#ops"}
            """);
        using (var output = new StringWriter())
        using (var error = new StringWriter())
        {
            var code = Program.Run(["apply", "-f", manifests, "--consul", Consul, "--prefix", Layout.Prefix], output, error);
            Assert.True(code == 0, $"dtask apply: {code}\n{output}\n{error}");
        }

        foreach (var node in Nodes)
        {
            executors.Add(StartExecutor(node));
        }

        actionsUiProcess = DtaskProcess.Start("ui", "--listen", "127.0.0.1:0", "--allow-actions", "--consul", Consul, "--prefix", Layout.Prefix);
        readOnlyUiProcess = DtaskProcess.Start("ui", "--listen", "127.0.0.1:0", "--consul", Consul, "--prefix", Layout.Prefix);
        var browser = Task.Run(Browser.Start);
        ActionsUi = await AddressAsync(actionsUiProcess);
        ReadOnlyUi = await AddressAsync(readOnlyUiProcess);
        foreach (var executor in executors)
        {
            await executor.WaitForLineAsync("watching ", TimeSpan.FromSeconds(30));
        }

        Driver = await browser;
    }

    private DtaskProcess StartExecutor(string node) => DtaskProcess.Start("executor", "--node", node, "--consul", Consul, "--prefix", Layout.Prefix,
        "--session-ttl", "10s", "--shutdown-grace", "5s", "--termination-grace", "1s");

    private static async Task<Uri> AddressAsync(DtaskProcess ui)
    {
        var line = await ui.WaitForLineAsync("dtask ui: serving ", TimeSpan.FromSeconds(30));
        return new Uri(line.Split(' ')[3]);
    }

    /// <summary>Stops every executor (SIGTERM, waits for the exits).</summary>
    public async Task StopExecutorsAsync()
    {
        await Task.WhenAll(executors.Select(e => e.StopAsync()));
        foreach (var executor in executors)
        {
            await executor.DisposeAsync();
        }

        executors.Clear();
    }

    /// <summary>Starts the executors again and waits until they watch their tasks.</summary>
    public async Task StartExecutorsAsync()
    {
        foreach (var node in Nodes)
        {
            executors.Add(StartExecutor(node));
        }

        foreach (var executor in executors)
        {
            await executor.WaitForLineAsync("watching ", TimeSpan.FromSeconds(30));
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            Driver?.Quit();
        }
        finally
        {
            Driver?.Dispose();
        }

        foreach (var process in executors.Append(actionsUiProcess).Append(readOnlyUiProcess).OfType<DtaskProcess>())
        {
            await process.DisposeAsync();
        }

        if (agent is not null)
        {
            await agent.DisposeAsync();
        }

        Work.Dispose();
    }
}
