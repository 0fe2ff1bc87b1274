using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace Dtask.Consul.Http;

/// <summary>
/// Decides whether the agent's TLS certificate is trusted: by the CA of <c>CONSUL_CACERT</c> when one is given
/// (a custom root trust store, the system store ignored), else by the system store; or always when
/// verification is switched off. Remembers why it last refused so that the error can say so.
/// </summary>
internal sealed class ServerCertificateTrust(bool verify, X509Certificate2Collection authorities)
{
    private string? lastRefusal;

    /// <summary>Takes (and clears) the reason of the last refusal.</summary>
    public string? TakeLastRefusal() => Interlocked.Exchange(ref lastRefusal, null);

    public bool Validate(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        if (!verify)
        {
            return true;
        }
        if (certificate is null || (errors & SslPolicyErrors.RemoteCertificateNotAvailable) != 0)
        {
            return Refuse("the server sent no certificate");
        }
        if ((errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0)
        {
            return Refuse("the certificate's names do not include the host name dialled");
        }
        if (authorities.Count == 0)
        {
            return errors == SslPolicyErrors.None || Refuse($"{Describe(chain)} (no CA file given, the system trust store was used)");
        }

        using var custom = new X509Chain();
        custom.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        custom.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        custom.ChainPolicy.CustomTrustStore.AddRange(authorities);
        if (chain is not null)
        {
            foreach (var element in chain.ChainElements)
            {
                custom.ChainPolicy.ExtraStore.Add(element.Certificate);
            }
        }
        var leaf = certificate as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        return custom.Build(leaf) || Refuse($"{Describe(custom)} (checked against the configured CA file)");
    }

    private bool Refuse(string reason)
    {
        Interlocked.Exchange(ref lastRefusal, reason);
        return false;
    }

    private static string Describe(X509Chain? chain)
    {
        var statuses = chain?.ChainStatus.Select(s => s.Status.ToString()).Distinct().ToArray() ?? [];
        return statuses.Length == 0 ? "the certificate chain is invalid" : "chain status " + string.Join(", ", statuses);
    }
}
