using System.CommandLine;
using Dtask.Cli.Commands.Tasks;
using Dtask.Consul.Configuration;

namespace Dtask.Cli.Ui;

/// <summary>
/// <c>dtask ui [--listen 127.0.0.1:8080] [--allow-actions] [--bearer-token-file FILE]</c>: serves the live status page
/// (tasks, timeline, task, nodes) until stopped. Binds loopback unless told otherwise. Exit 2 for a bad option,
/// 1 when the address cannot be bound.
/// </summary>
internal static class UiCommand
{
    /// <summary>The <c>--bearer-token-file</c> option (also on <c>dtask operator</c>).</summary>
    public static Option<string?> BearerTokenFileOption() => new("--bearer-token-file")
    {
        Description = "Require this file's token on every request (Authorization: Bearer, or a cookie set by the /login form): for a UI bound beyond loopback.",
    };

    /// <summary>The <c>--allow-actions</c> option (also on <c>dtask operator</c>).</summary>
    public static Option<bool> AllowActionsOption() => new("--allow-actions")
    {
        Description = "Offer trigger, suspend and resume in the page (the Consul token must be able to write; same rules as the CLI).",
    };

    public static Command Create()
    {
        var listen = new Option<string>("--listen")
        {
            Description = $"HOST:PORT to serve the page on (default {UiOptions.DefaultListen}: this machine only; port 0 picks a free port).",
            DefaultValueFactory = _ => UiOptions.DefaultListen,
        };
        var allowActions = AllowActionsOption();
        var bearer = BearerTokenFileOption();
        var consul = new ConsulConnection();
        var command = new Command("ui", "Serve a live web page of tasks, runs by node over time, history and nodes, straight from Consul (updates within a second). Prints its address.")
        {
            listen,
            allowActions,
            bearer,
        };
        consul.AddTo(command);
        command.SetAction(async (parseResult, cancellationToken) =>
        {
            var output = parseResult.InvocationConfiguration.Output;
            var error = parseResult.InvocationConfiguration.Error;
            if (!TryOptions("ui", parseResult.GetValue(listen) ?? UiOptions.DefaultListen, parseResult.GetValue(allowActions), parseResult.GetValue(bearer),
                    () => consul.ClientOptions(parseResult), consul.Layout(parseResult), error, out var options))
            {
                return Program.UsageError;
            }

            UiServer server;
            try
            {
                server = await UiServer.StartAsync(options!, cancellationToken).ConfigureAwait(false);
            }
            catch (IOException e)
            {
                error.WriteLine($"dtask ui: cannot listen on {options!.Listen}: {e.Message}");
                return Program.Failure;
            }

            await using (server.ConfigureAwait(false))
            {
                output.WriteLine($"dtask ui: serving {server.Address} (actions {(options!.AllowActions ? "on" : "off")}); Ctrl-C stops");
                output.Flush();
                try
                {
                    // SIGTERM reaches the host's lifetime first (it stops the server); Ctrl-C may reach either.
                    using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, server.Stopping);
                    await Task.Delay(Timeout.Infinite, stop.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    // Stopped.
                }
            }

            return Program.Success;
        });
        return command;
    }

    /// <summary>Checks the UI options; writes each problem as <c>dtask COMMAND: ...</c> and returns false when one is bad.</summary>
    public static bool TryOptions(string commandName, string listenText, bool allowActions, string? bearerFile, Func<ConsulClientOptions> consul,
        Core.State.KvLayout layout, TextWriter error, out UiOptions? options)
    {
        options = null;
        var optionName = commandName == "ui" ? "--listen" : "--ui-listen";
        if (UiOptions.ParseListen(listenText, out var problem) is not { } endpoint)
        {
            error.WriteLine($"dtask {commandName}: {optionName} {problem}");
            return false;
        }

        string? token = null;
        if (bearerFile is not null)
        {
            try
            {
                token = File.ReadAllText(bearerFile).Trim();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                error.WriteLine($"dtask {commandName}: --bearer-token-file {bearerFile}: {e.Message}");
                return false;
            }

            if (token.Length < 16)
            {
                error.WriteLine($"dtask {commandName}: --bearer-token-file {bearerFile}: the token must be at least 16 characters");
                return false;
            }
        }

        ConsulClientOptions consulOptions;
        try
        {
            consulOptions = consul();
        }
        catch (ConsulConfigurationException e)
        {
            error.WriteLine($"dtask {commandName}: {e.Message}");
            return false;
        }

        options = new UiOptions(endpoint, consulOptions, layout, allowActions, token);
        return true;
    }
}
