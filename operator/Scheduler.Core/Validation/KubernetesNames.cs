using System.Text.RegularExpressions;

namespace Dtask.Core.Validation;

/// <summary>The Kubernetes rules for names, label keys and label values; each check returns the reason or null.</summary>
public static partial class KubernetesNames
{
    /// <summary>Null when <paramref name="value"/> is a DNS-1123 label (so it is safe in a KV key), else why not.</summary>
    public static string? CheckDnsLabel(string value)
    {
        if (value.Length == 0)
        {
            return "must not be empty";
        }

        if (value.Length > ValidationLimits.MaxNameLength)
        {
            return $"'{Shorten(value)}' is {value.Length} characters; at most {ValidationLimits.MaxNameLength} are allowed";
        }

        return DnsLabel().IsMatch(value)
            ? null
            : $"'{value}' is not a DNS-1123 label: use lower-case letters, digits and '-', starting and ending with a letter or digit";
    }

    /// <summary>Null when <paramref name="key"/> is a valid label key (<c>[prefix/]name</c>), else why not.</summary>
    public static string? CheckLabelKey(string key)
    {
        var slash = key.IndexOf('/', StringComparison.Ordinal);
        var name = slash < 0 ? key : key[(slash + 1)..];
        if (slash >= 0)
        {
            var prefix = key[..slash];
            if (prefix.Length == 0 || prefix.Length > 253 || !DnsSubdomain().IsMatch(prefix))
            {
                return $"label key '{key}' has an invalid prefix: it must be a DNS subdomain such as example.com";
            }
        }

        if (name.Length == 0 || name.Length > ValidationLimits.MaxNameLength || !LabelName().IsMatch(name))
        {
            return $"label key '{key}' is not valid: the name part has at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit";
        }

        return null;
    }

    /// <summary>Null when <paramref name="value"/> is a valid label value (may be empty), else why not.</summary>
    public static string? CheckLabelValue(string value) =>
        value.Length == 0 || (value.Length <= ValidationLimits.MaxNameLength && LabelName().IsMatch(value))
            ? null
            : $"label value '{Shorten(value)}' is not valid: at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit";

    private static string Shorten(string value) => value.Length <= 70 ? value : value[..67] + "...";

    [GeneratedRegex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]
    private static partial Regex DnsLabel();

    [GeneratedRegex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")]
    private static partial Regex DnsSubdomain();

    [GeneratedRegex("^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")]
    private static partial Regex LabelName();
}
