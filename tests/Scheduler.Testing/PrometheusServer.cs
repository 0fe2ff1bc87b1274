using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;

namespace Dtask.Testing;

/// <summary>Finds the tools <c>scripts/install-prometheus.sh</c> and <c>scripts/install-helm.sh</c> put in <c>.tools/bin</c>.</summary>
public static class ToolBinary
{
    /// <summary>
    /// <c>.tools/bin/NAME</c> in the nearest folder above the test assembly that has one, else NAME on PATH.
    /// </summary>
    /// <param name="name">The tool: <c>prometheus</c>, <c>promtool</c>, <c>helm</c>.</param>
    /// <param name="installer">The script that installs it, for the message.</param>
    /// <returns>The path.</returns>
    /// <exception cref="FileNotFoundException">No binary was found.</exception>
    public static string Locate(string name, string installer)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, ".tools", "bin", name);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        foreach (var folder in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(folder, name);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new FileNotFoundException($"No {name} binary: run `bash scripts/{installer}` (make test does).");
    }

    /// <summary>Runs a tool to its end; returns its exit code and output (stdout then stderr).</summary>
    /// <param name="path">The binary.</param>
    /// <param name="arguments">Its arguments.</param>
    /// <param name="workingDirectory">Where it runs; the current folder when null.</param>
    /// <returns>The exit code, stdout and stderr.</returns>
    public static async Task<(int ExitCode, string Output, string Error)> RunAsync(string path, IEnumerable<string> arguments, string? workingDirectory = null)
    {
        var start = new ProcessStartInfo(path)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
        return (process.ExitCode, await output.ConfigureAwait(false), await error.ConfigureAwait(false));
    }
}

/// <summary>
/// A real Prometheus server (<c>.tools/bin/prometheus</c>) on a loopback port, scraping the given targets every second,
/// with its data in a temporary folder; ask it with <see cref="QueryAsync"/> (the HTTP query API). Disposing stops it.
/// </summary>
public sealed class PrometheusServer : IAsyncDisposable
{
    private readonly Process process;
    private readonly TempDirectory folder;
    private readonly HttpClient http;
    private readonly List<string> lines = [];

    private PrometheusServer(Process process, TempDirectory folder, Uri address)
    {
        this.process = process;
        this.folder = folder;
        Address = address;
        http = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(10) };
    }

    /// <summary>Its HTTP address.</summary>
    public Uri Address { get; }

    /// <summary>What it printed.</summary>
    public string Output
    {
        get
        {
            lock (lines)
            {
                return string.Join('\n', lines);
            }
        }
    }

    /// <summary>A free loopback TCP port.</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Starts Prometheus scraping <c>/metrics</c> of each job's targets (<c>host:port</c>) every second, and waits until it is ready.</summary>
    /// <param name="jobs">Job name to targets.</param>
    /// <returns>The running server.</returns>
    public static async Task<PrometheusServer> StartAsync(IReadOnlyDictionary<string, IReadOnlyList<string>> jobs)
    {
        ArgumentNullException.ThrowIfNull(jobs);
        var binary = ToolBinary.Locate("prometheus", "install-prometheus.sh");
        var folder = new TempDirectory();
        var config = "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nscrape_configs:\n"
            + string.Concat(jobs.Select(j => $"  - job_name: {j.Key}\n    static_configs:\n      - targets: [{string.Join(", ", j.Value.Select(t => "\"" + t + "\""))}]\n"));
        var configPath = Path.Combine(folder.Path, "prometheus.yml");
        await File.WriteAllTextAsync(configPath, config).ConfigureAwait(false);
        var port = FreePort();
        var start = new ProcessStartInfo(binary)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = folder.Path,
        };
        foreach (var argument in (string[])[$"--config.file={configPath}", $"--storage.tsdb.path={Path.Combine(folder.Path, "data")}",
                     $"--web.listen-address=127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}", "--log.level=warn"])
        {
            start.ArgumentList.Add(argument);
        }

        var process = new Process { StartInfo = start };
        var server = new PrometheusServer(process, folder, new Uri($"http://127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}/"));
        process.OutputDataReceived += (_, e) => server.Add(e.Data);
        process.ErrorDataReceived += (_, e) => server.Add(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (waited.Elapsed < TimeSpan.FromSeconds(60) && !process.HasExited)
        {
            try
            {
                using var ready = await server.http.GetAsync(new Uri("-/ready", UriKind.Relative)).ConfigureAwait(false);
                if (ready.IsSuccessStatusCode)
                {
                    return server;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }

            await Task.Delay(200).ConfigureAwait(false);
        }

        var output = server.Output;
        await server.DisposeAsync().ConfigureAwait(false);
        throw new InvalidOperationException($"prometheus did not become ready:\n{output}");
    }

    /// <summary>Evaluates an instant query now; the samples as (labels, value).</summary>
    /// <param name="query">PromQL.</param>
    /// <returns>The vector's samples.</returns>
    public async Task<IReadOnlyList<(IReadOnlyDictionary<string, string> Labels, double Value)>> QueryAsync(string query)
    {
        using var response = await http.GetAsync(new Uri("api/v1/query?query=" + Uri.EscapeDataString(query), UriKind.Relative)).ConfigureAwait(false);
        var body = await response.Content.ReadAsStringAsync().ConfigureAwait(false);
        using var json = JsonDocument.Parse(body);
        var root = json.RootElement;
        if (root.GetProperty("status").GetString() != "success")
        {
            throw new InvalidOperationException($"query {query} failed: {body}");
        }

        var data = root.GetProperty("data");
        if (data.GetProperty("resultType").GetString() == "scalar")
        {
            return [(new Dictionary<string, string>(), Number(data.GetProperty("result")[1]))];
        }

        return [.. data.GetProperty("result").EnumerateArray().Select(sample => (
            (IReadOnlyDictionary<string, string>)sample.GetProperty("metric").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString() ?? ""),
            Number(sample.GetProperty("value")[1])))];
    }

    /// <summary>The value of a query that yields one sample, or null when it yields none.</summary>
    /// <param name="query">PromQL.</param>
    /// <returns>The value.</returns>
    public async Task<double?> ValueAsync(string query)
    {
        var samples = await QueryAsync(query).ConfigureAwait(false);
        return samples.Count switch
        {
            0 => null,
            1 => samples[0].Value,
            _ => throw new InvalidOperationException($"query {query} yields {samples.Count} samples"),
        };
    }

    /// <summary>The health of each scrape target (<c>up</c>, <c>down</c>, <c>unknown</c>) by its address.</summary>
    /// <returns>Address to health.</returns>
    public async Task<IReadOnlyDictionary<string, string>> TargetsAsync()
    {
        var body = await http.GetStringAsync(new Uri("api/v1/targets", UriKind.Relative)).ConfigureAwait(false);
        using var json = JsonDocument.Parse(body);
        return json.RootElement.GetProperty("data").GetProperty("activeTargets").EnumerateArray()
            .ToDictionary(t => t.GetProperty("labels").GetProperty("instance").GetString() ?? "", t => t.GetProperty("health").GetString() ?? "");
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException)
        {
            // Gone already.
        }

        process.Dispose();
        http.Dispose();
        folder.Dispose();
    }

    private static double Number(JsonElement text) => double.Parse(text.GetString()!, NumberStyles.Float, CultureInfo.InvariantCulture);

    private void Add(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (lines)
        {
            lines.Add(line);
        }
    }
}
