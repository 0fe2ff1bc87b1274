using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Dtask.Consul.Configuration;

namespace Dtask.Consul.Http;

/// <summary>Builds the HTTP handler for a set of options: connection pooling, TLS trust and client certificate.</summary>
internal static class ConsulMessageHandler
{
    public static SocketsHttpHandler Create(ConsulClientOptions options, ServerCertificateTrust trust)
    {
        var handler = new SocketsHttpHandler
        {
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            ConnectTimeout = TimeSpan.FromSeconds(5),
            AutomaticDecompression = System.Net.DecompressionMethods.None,
        };
        if (options.UsesTls)
        {
            handler.SslOptions.RemoteCertificateValidationCallback = trust.Validate;
            if (LoadClientCertificate(options) is { } clientCertificate)
            {
                handler.SslOptions.ClientCertificates = [clientCertificate];
                handler.SslOptions.LocalCertificateSelectionCallback = (_, _, _, _, _) => clientCertificate;
            }
        }
        return handler;
    }

    public static X509Certificate2Collection LoadAuthorities(ConsulClientOptions options)
    {
        var authorities = new X509Certificate2Collection();
        if (options.CaCertificateFile is { } file)
        {
            try
            {
                authorities.ImportFromPemFile(file);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException)
            {
                throw new ConsulConfigurationException($"{ConsulEnvironment.CaCert}: cannot read the CA file '{file}': {e.Message}", e);
            }
            if (authorities.Count == 0)
            {
                throw new ConsulConfigurationException($"{ConsulEnvironment.CaCert}: '{file}' holds no PEM certificate");
            }
        }
        return authorities;
    }

    private static X509Certificate2? LoadClientCertificate(ConsulClientOptions options)
    {
        if (options.ClientCertificateFile is null && options.ClientKeyFile is null)
        {
            return null;
        }
        if (options.ClientCertificateFile is null || options.ClientKeyFile is null)
        {
            throw new ConsulConfigurationException(
                $"{ConsulEnvironment.ClientCert} and {ConsulEnvironment.ClientKey} must be given together");
        }
        try
        {
            using var pem = X509Certificate2.CreateFromPemFile(options.ClientCertificateFile, options.ClientKeyFile);
            // A PKCS#12 round trip gives the certificate a persisted key, which TLS client authentication needs.
            return X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), password: null);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException)
        {
            throw new ConsulConfigurationException(
                $"{ConsulEnvironment.ClientCert}/{ConsulEnvironment.ClientKey}: cannot load '{options.ClientCertificateFile}' with its key: {e.Message}", e);
        }
    }
}
