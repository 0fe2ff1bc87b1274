using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Dtask.Cli.Commands.Tasks;
using Dtask.Consul;
using Dtask.Consul.Configuration;
using Dtask.Consul.Errors;
using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Executor.Ledger;
using Dtask.Operator.Status;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Dtask.Cli.Ui;

/// <summary>How a UI server is started.</summary>
/// <param name="Listen">The endpoint to bind (loopback by default; port 0 picks a free one).</param>
/// <param name="Consul">The Consul client options (its token is used for every read and action).</param>
/// <param name="Layout">The KV layout.</param>
/// <param name="AllowActions">Whether the page offers trigger, suspend and resume.</param>
/// <param name="BearerToken">When set, every request must carry it (<c>Authorization: Bearer</c>, or the cookie set by <c>/login</c>).</param>
internal sealed record UiOptions(IPEndPoint Listen, ConsulClientOptions Consul, KvLayout Layout, bool AllowActions, string? BearerToken)
{
    /// <summary>The default of <c>--listen</c>.</summary>
    public const string DefaultListen = "127.0.0.1:8080";

    /// <summary>Parses <c>HOST:PORT</c> (an IP address; <c>localhost</c> is loopback); null with the reason otherwise.</summary>
    public static IPEndPoint? ParseListen(string text, out string problem)
    {
        problem = "";
        var colon = text.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(text.AsSpan(colon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var port) || port > 65535)
        {
            problem = $"'{text}' is not HOST:PORT (such as {DefaultListen})";
            return null;
        }

        var host = text[..colon].Trim('[', ']');
        if (host == "localhost")
        {
            return new IPEndPoint(IPAddress.Loopback, port);
        }

        if (!IPAddress.TryParse(host, out var address))
        {
            problem = $"'{text}': the host '{host}' is not an IP address (write 127.0.0.1, 0.0.0.0 or ::)";
            return null;
        }

        return new IPEndPoint(address, port);
    }
}

/// <summary>
/// <c>dtask ui</c>'s web server: the page (embedded), its JSON reads, server-sent change events fed by one
/// <see cref="UiWatch"/>, and — with <see cref="UiOptions.AllowActions"/> — trigger, suspend and resume behind a
/// per-server CSRF token, a custom header and an Origin check.
/// </summary>
internal sealed class UiServer : IAsyncDisposable
{
    private const string CsrfHeader = "X-Dtask-Csrf";
    private const string AuthCookie = "dtask_ui";

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    private readonly WebApplication app;
    private readonly ConsulClient client;
    private readonly ConsulTaskLedger ledger;
    private readonly CancellationTokenSource stopping = new();
    private readonly UiOptions options;
    private readonly string csrf = Convert.ToHexString(RandomNumberGenerator.GetBytes(32));
    private readonly Dictionary<string, (byte[] Body, string Type)> assets;
    private Task? watching;

    private UiServer(UiOptions options)
    {
        this.options = options;
        client = new ConsulClient(options.Consul);
        ledger = new ConsulTaskLedger(client, options.Layout);
        Watch = new UiWatch(client, options.Layout, TimeProvider.System);
        assets = LoadAssets(options.AllowActions ? csrf : null);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(options.Listen));
        app = builder.Build();
        Map();
    }

    /// <summary>The watch behind every view.</summary>
    public UiWatch Watch { get; }

    /// <summary>Cancelled when the server's host stops by itself (it handles SIGTERM and Ctrl-C).</summary>
    public CancellationToken Stopping => app.Lifetime.ApplicationStopping;

    /// <summary>The page's address (with the port bound), once started.</summary>
    public Uri? Address { get; private set; }

    /// <summary>Starts the watch and binds the listener.</summary>
    public static async Task<UiServer> StartAsync(UiOptions options, CancellationToken cancellationToken)
    {
        var server = new UiServer(options);
        server.watching = Task.Run(() => server.Watch.RunAsync(server.stopping.Token), CancellationToken.None);
        await server.app.StartAsync(cancellationToken).ConfigureAwait(false);
        var bound = server.app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault();
        server.Address = bound is null ? null : new Uri(bound.Replace("[::]", "[::1]", StringComparison.Ordinal).Replace("0.0.0.0", "127.0.0.1", StringComparison.Ordinal) + "/");
        return server;
    }

    /// <summary>Stops serving (open event streams end) and the watch.</summary>
    public async ValueTask DisposeAsync()
    {
        await stopping.CancelAsync().ConfigureAwait(false);
        using (var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5)))
        {
            await app.StopAsync(timeout.Token).ConfigureAwait(false);
        }

        if (watching is not null)
        {
            await watching.ConfigureAwait(false);
        }

        await app.DisposeAsync().ConfigureAwait(false);
        await ledger.DisposeAsync().ConfigureAwait(false);
        client.Dispose();
        stopping.Dispose();
    }

    private void Map()
    {
        app.Use(async (context, next) =>
        {
            var headers = context.Response.Headers;
            headers["Content-Security-Policy"] = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
            headers["X-Content-Type-Options"] = "nosniff";
            headers["Referrer-Policy"] = "no-referrer";
            headers["Cache-Control"] = "no-store";
            if (options.BearerToken is not null && context.Request.Path != "/login" && context.Request.Path != "/app.css" && !Authorized(context.Request))
            {
                if (context.Request.Path.StartsWithSegments("/api", StringComparison.Ordinal))
                {
                    context.Response.StatusCode = StatusCodes.Status401Unauthorized;
                    context.Response.Headers.WWWAuthenticate = "Bearer";
                    return;
                }

                context.Response.Redirect("/login");
                return;
            }

            await next(context).ConfigureAwait(false);
        });

        foreach (var (path, _) in assets)
        {
            app.MapGet(path == "/index.html" ? "/" : path, (HttpContext context) => Asset(context, path));
        }

        app.MapGet("/login", (HttpContext context) => Asset(context, "/login.html"));
        app.MapPost("/login", (Delegate)Login);
        app.MapGet("/api/tasks", (string? ns, string? q, int? offset, int? limit) =>
            Results.Json(UiViews.Tasks(Watch.Current, ns, q, offset ?? 0, Math.Clamp(limit ?? 50, 1, 500), TimeProvider.System.GetUtcNow()), Json));
        app.MapGet("/api/timeline", (string? range, string? ns, string? q) =>
        {
            var span = range switch { "5m" => TimeSpan.FromMinutes(5), "15m" => TimeSpan.FromMinutes(15), "day" => TimeSpan.FromDays(1), "week" => TimeSpan.FromDays(7), _ => TimeSpan.FromHours(1) };
            return Results.Json(UiViews.Timeline(Watch.Current, span, ns, q, TimeProvider.System.GetUtcNow()), Json);
        });
        app.MapGet("/api/nodes", () => Results.Json(UiViews.Nodes(Watch.Current), Json));
        app.MapGet("/api/task", TaskAsync);
        app.MapGet("/api/events", EventsAsync);
        app.MapPost("/api/actions/{action}", ActionAsync);
    }

    private IResult Asset(HttpContext context, string path)
    {
        var (body, type) = assets[path];
        return Results.Bytes(body, type);
    }

    private bool Authorized(HttpRequest request)
    {
        var given = request.Headers.Authorization.ToString() is { } header && header.StartsWith("Bearer ", StringComparison.Ordinal)
            ? header["Bearer ".Length..].Trim()
            : request.Cookies[AuthCookie];
        return given is not null && FixedTimeEquals(given, options.BearerToken!);
    }

    private static bool FixedTimeEquals(string a, string b) =>
        CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(a)), SHA256.HashData(Encoding.UTF8.GetBytes(b)));

    private async Task<IResult> Login(HttpContext context)
    {
        if (options.BearerToken is null)
        {
            return Results.Redirect("/");
        }

        if (!SameOrigin(context.Request))
        {
            return Results.StatusCode(StatusCodes.Status403Forbidden);
        }

        var form = await context.Request.ReadFormAsync(context.RequestAborted).ConfigureAwait(false);
        if (!FixedTimeEquals(form["token"].ToString(), options.BearerToken))
        {
            return Results.Redirect("/login?wrong=1");
        }

        context.Response.Cookies.Append(AuthCookie, options.BearerToken, new CookieOptions
        {
            HttpOnly = true,
            SameSite = SameSiteMode.Strict,
            Secure = context.Request.IsHttps,
            Path = "/",
        });
        return Results.Redirect("/");
    }

    private async Task<IResult> TaskAsync(string? ns, string? name, CancellationToken cancellationToken)
    {
        if (!TaskArgument.TryParse($"{ns}/{name}", out var target, out var problem))
        {
            return Results.Json(new { error = problem }, Json, statusCode: StatusCodes.Status400BadRequest);
        }

        try
        {
            var observation = await new TaskObservationReader(client, options.Layout).ReadAsync(target.Namespace, target.Name, cancellationToken).ConfigureAwait(false);
            if (observation.Envelope is null)
            {
                return Results.Json(new { error = $"{target} not found in Consul (under {options.Layout.TasksPrefix})" }, Json, statusCode: StatusCodes.Status404NotFound);
            }

            var pending = await ledger.ListControlRequestsAsync(new TaskId(target.Namespace, target.Name), cancellationToken).ConfigureAwait(false);
            var requests = new List<UiField>();
            foreach (var pair in pending.OrderBy(p => p.CreateIndex))
            {
                var request = pair.Request;
                requests.Add(new UiField(pair.Action == ControlAction.Trigger ? "trigger" : "stop",
                    (pair.Action == ControlAction.Trigger ? $"{pair.Id} (#{pair.CreateIndex})" : "run " + pair.Id) + (request is null ? "" : $" by {request.RequestedBy} at {TableOutput.Instant(request.RequestedAt)}")));
            }

            return Results.Json(UiViews.Task(observation, Watch.Current, requests, TimeProvider.System.GetUtcNow()), Json);
        }
        catch (ConsulException e)
        {
            return Results.Json(new { error = Describe(e) }, Json, statusCode: StatusCodes.Status502BadGateway);
        }
    }

    /// <summary>Server-sent events: <c>change</c> with the snapshot version whenever the watch has a new one; a comment every 15 s.</summary>
    private async Task EventsAsync(HttpContext context)
    {
        context.Response.ContentType = "text/event-stream";
        context.Response.Headers.CacheControl = "no-store";
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, stopping.Token);
        var token = linked.Token;
        long seen = -1;
        try
        {
            while (!token.IsCancellationRequested)
            {
                var current = Watch.Current;
                if (current.Version != seen)
                {
                    seen = current.Version;
                    await context.Response.WriteAsync($"event: change\ndata: {seen}\n\n", token).ConfigureAwait(false);
                    await context.Response.Body.FlushAsync(token).ConfigureAwait(false);
                }

                using var heartbeat = CancellationTokenSource.CreateLinkedTokenSource(token);
                heartbeat.CancelAfter(TimeSpan.FromSeconds(15));
                try
                {
                    await Watch.WaitForChangeAsync(seen, heartbeat.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!token.IsCancellationRequested)
                {
                    await context.Response.WriteAsync(": keep-alive\n\n", token).ConfigureAwait(false);
                    await context.Response.Body.FlushAsync(token).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // The tab closed, or the server stops.
        }
    }

    private async Task<IResult> ActionAsync(HttpContext context, string action, string? ns, string? name, CancellationToken cancellationToken)
    {
        if (!options.AllowActions)
        {
            return Results.Json(new { error = "actions are off: start dtask ui with --allow-actions" }, Json, statusCode: StatusCodes.Status403Forbidden);
        }

        if (!SameOrigin(context.Request) || !FixedTimeEquals(context.Request.Headers[CsrfHeader].ToString(), csrf))
        {
            return Results.Json(new { error = "refused: the request did not come from this page (CSRF check)" }, Json, statusCode: StatusCodes.Status403Forbidden);
        }

        if (action is not ("trigger" or "suspend" or "resume"))
        {
            return Results.Json(new { error = $"unknown action '{action}'" }, Json, statusCode: StatusCodes.Status404NotFound);
        }

        if (!TaskArgument.TryParse($"{ns}/{name}", out var target, out var problem))
        {
            return Results.Json(new { exitCode = Program.UsageError, message = $"dtask {action}: {problem}" }, Json, statusCode: StatusCodes.Status400BadRequest);
        }

        ActionOutcome outcome;
        try
        {
            outcome = action == "trigger"
                ? await TriggerCommand.TriggerAsync(ledger, target, "ui@" + Environment.MachineName, cancellationToken).ConfigureAwait(false)
                : await SuspendCommand.SetAsync(ledger, target, action == "suspend", force: false, signer: null, cancellationToken).ConfigureAwait(false);
        }
        catch (ConsulException e)
        {
            var code = e is ConsulPermissionDeniedException ? ConsulConnection.PermissionDenied
                : e is ConsulUnreachableException or ConsulTlsException or ConsulNoLeaderException or ConsulServerException ? ConsulConnection.Unavailable
                : Program.Failure;
            outcome = new ActionOutcome(code, Describe(e));
        }

        return Results.Json(new
        {
            exitCode = outcome.ExitCode,
            message = outcome.Succeeded ? outcome.Message : $"dtask {action}: {outcome.Message} (exit {outcome.ExitCode})",
        }, Json, statusCode: outcome.Succeeded ? StatusCodes.Status200OK : StatusCodes.Status409Conflict);
    }

    private static string Describe(ConsulException e) => e switch
    {
        ConsulPermissionDeniedException => "permission denied: " + e.Message,
        ConsulUnreachableException or ConsulTlsException or ConsulNoLeaderException => "Consul is unreachable: " + e.Message,
        ConsulServerException => "Consul is unavailable: " + e.Message,
        _ => e.Message,
    };

    /// <summary>True when the request's Origin (or, without one, its Referer) is this server, and the browser does not call it cross-site.</summary>
    private static bool SameOrigin(HttpRequest request)
    {
        var site = request.Headers["Sec-Fetch-Site"].ToString();
        if (site is "cross-site" or "same-site")
        {
            return false;
        }

        var origin = request.Headers.Origin.ToString();
        if (string.IsNullOrEmpty(origin))
        {
            origin = request.Headers.Referer.ToString();
        }

        return Uri.TryCreate(origin, UriKind.Absolute, out var uri)
            && string.Equals(uri.Scheme, request.Scheme, StringComparison.OrdinalIgnoreCase)
            && string.Equals(uri.Authority, request.Host.Value, StringComparison.OrdinalIgnoreCase);
    }

    private static Dictionary<string, (byte[], string)> LoadAssets(string? csrf)
    {
        var assembly = typeof(UiServer).Assembly;
        var found = new Dictionary<string, (byte[], string)>(StringComparer.Ordinal);
        foreach (var name in assembly.GetManifestResourceNames().Where(n => n.StartsWith("ui/", StringComparison.Ordinal)))
        {
            using var stream = assembly.GetManifestResourceStream(name)!;
            using var reader = new StreamReader(stream, Encoding.UTF8);
            var text = reader.ReadToEnd();
            var path = "/" + name["ui/".Length..];
            if (path is "/index.html")
            {
                text = text.Replace("{{CSRF}}", csrf ?? "", StringComparison.Ordinal).Replace("{{ACTIONS}}", csrf is null ? "off" : "on", StringComparison.Ordinal);
            }

            var type = Path.GetExtension(path) switch
            {
                ".html" => "text/html; charset=utf-8",
                ".js" => "text/javascript; charset=utf-8",
                ".css" => "text/css; charset=utf-8",
                ".svg" => "image/svg+xml",
                _ => "application/octet-stream",
            };
            found[path] = (Encoding.UTF8.GetBytes(text), type);
        }

        return found;
    }
}
