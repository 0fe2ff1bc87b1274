using System.Globalization;

namespace Dtask.Consul.Configuration;

/// <summary>
/// Reads <see cref="ConsulClientOptions"/> from the variables the <c>consul</c> CLI uses, plus the original
/// <c>CONSUL_HOST</c>/<c>CONSUL_PORT</c>:
/// <list type="bullet">
/// <item><c>CONSUL_HTTP_ADDR</c>: <c>host:port</c>, <c>http://host:port</c> or <c>https://host:port</c>.</item>
/// <item><c>CONSUL_HOST</c> (a host, or <c>host:port</c>) and <c>CONSUL_PORT</c>: used when
/// <c>CONSUL_HTTP_ADDR</c> is not set.</item>
/// <item><c>CONSUL_HTTP_SSL</c>: <c>true</c> makes a scheme-less address https.</item>
/// <item><c>CONSUL_HTTP_SSL_VERIFY</c>: <c>false</c> accepts any server certificate.</item>
/// <item><c>CONSUL_HTTP_TOKEN</c>, and <c>CONSUL_HTTP_TOKEN_FILE</c> which wins when both are set (as in
/// Consul's own client).</item>
/// <item><c>CONSUL_CACERT</c>, <c>CONSUL_CLIENT_CERT</c>, <c>CONSUL_CLIENT_KEY</c>: PEM files.</item>
/// </list>
/// </summary>
public static class ConsulEnvironment
{
    /// <summary>Names of the variables read.</summary>
    public const string HttpAddr = "CONSUL_HTTP_ADDR", Host = "CONSUL_HOST", Port = "CONSUL_PORT",
        HttpToken = "CONSUL_HTTP_TOKEN", HttpTokenFile = "CONSUL_HTTP_TOKEN_FILE", HttpSsl = "CONSUL_HTTP_SSL",
        HttpSslVerify = "CONSUL_HTTP_SSL_VERIFY", CaCert = "CONSUL_CACERT", ClientCert = "CONSUL_CLIENT_CERT",
        ClientKey = "CONSUL_CLIENT_KEY";

    /// <summary>Reads the process environment.</summary>
    public static ConsulClientOptions ReadProcessEnvironment() => Read(Environment.GetEnvironmentVariable);

    /// <summary>Reads the variables from a dictionary (missing keys are unset).</summary>
    public static ConsulClientOptions Read(IReadOnlyDictionary<string, string> variables)
    {
        ArgumentNullException.ThrowIfNull(variables);
        return Read(name => variables.TryGetValue(name, out var value) ? value : null);
    }

    /// <summary>Reads the variables through <paramref name="variable"/> (null or empty means unset).</summary>
    /// <exception cref="ConsulConfigurationException">A variable has an invalid value or a file is unreadable.</exception>
    public static ConsulClientOptions Read(Func<string, string?> variable)
    {
        ArgumentNullException.ThrowIfNull(variable);
        string? Get(string name) => variable(name) is { Length: > 0 } value ? value.Trim() : null;

        var ssl = ParseBool(HttpSsl, Get(HttpSsl)) ?? false;
        var verify = ParseBool(HttpSslVerify, Get(HttpSslVerify)) ?? true;
        var address = Get(HttpAddr) is { } addr
            ? ParseAddress(HttpAddr, addr, ssl, defaultPort: null)
            : Get(Host) is { } host
                ? ParseAddress(Host, host, ssl, defaultPort: ParsePort(Get(Port)))
                : ParseAddress(Port, "127.0.0.1", ssl, defaultPort: ParsePort(Get(Port)) ?? 8500);

        ConsulToken? token = Get(HttpToken) is { } text ? new ConsulToken(text) : null;
        if (Get(HttpTokenFile) is { } tokenFile)
        {
            token = ReadTokenFile(tokenFile) ?? token;
        }

        return new ConsulClientOptions
        {
            Address = address,
            Token = token,
            VerifyServerCertificate = verify,
            CaCertificateFile = Get(CaCert),
            ClientCertificateFile = Get(ClientCert),
            ClientKeyFile = Get(ClientKey),
        };
    }

    private static ConsulToken? ReadTokenFile(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConsulConfigurationException($"{HttpTokenFile}: cannot read the token file '{path}': {e.GetType().Name}", e);
        }
        return string.IsNullOrWhiteSpace(text) ? null : new ConsulToken(text);
    }

    private static Uri ParseAddress(string variable, string value, bool ssl, int? defaultPort)
    {
        var scheme = ssl ? Uri.UriSchemeHttps : Uri.UriSchemeHttp;
        var rest = value;
        if (value.Contains("://", StringComparison.Ordinal))
        {
            var parts = value.Split("://", 2);
            scheme = parts[0].ToUpperInvariant() switch
            {
                "HTTP" => Uri.UriSchemeHttp,
                "HTTPS" => Uri.UriSchemeHttps,
                _ => throw new ConsulConfigurationException(
                    $"{variable}: unsupported scheme '{parts[0]}' in '{value}' (use http:// or https://)"),
            };
            rest = parts[1].TrimEnd('/');
        }

        if (!Uri.TryCreate($"{scheme}://{rest}", UriKind.Absolute, out var uri) || uri.AbsolutePath != "/"
            || string.IsNullOrEmpty(uri.Host))
        {
            throw new ConsulConfigurationException($"{variable}: '{value}' is not a host, host:port or URL of a Consul agent");
        }

        var explicitPort = rest.LastIndexOf(':') > rest.LastIndexOf(']');
        var port = explicitPort ? uri.Port : defaultPort ?? 8500;
        return new UriBuilder(scheme, uri.Host, port).Uri;
    }

    private static int? ParsePort(string? value)
    {
        if (value is null)
        {
            return null;
        }
        if (int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var port) && port is > 0 and < 65536)
        {
            return port;
        }
        throw new ConsulConfigurationException($"{Port}: '{value}' is not a TCP port (1-65535)");
    }

    // The spellings Go's strconv.ParseBool accepts, as the consul CLI does.
    private static bool? ParseBool(string variable, string? value) => value switch
    {
        null => null,
        "1" or "t" or "T" or "true" or "TRUE" or "True" => true,
        "0" or "f" or "F" or "false" or "FALSE" or "False" => false,
        _ => throw new ConsulConfigurationException($"{variable}: '{value}' is not a boolean (true or false)"),
    };
}
