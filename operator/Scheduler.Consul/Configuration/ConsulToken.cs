namespace Dtask.Consul.Configuration;

/// <summary>
/// An ACL token (a secret). Its text is sent only in the <c>X-Consul-Token</c> header: <see cref="ToString"/>,
/// exception messages and logs never show it.
/// </summary>
public sealed class ConsulToken : IEquatable<ConsulToken>
{
    private readonly string secret;

    /// <summary>Wraps a token's secret text.</summary>
    public ConsulToken(string secret)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(secret);
        this.secret = secret.Trim();
    }

    /// <summary>The secret text, for the request header and nothing else.</summary>
    public string Reveal() => secret;

    /// <summary>Always <c>[redacted]</c>.</summary>
    public override string ToString() => "[redacted]";

    /// <inheritdoc />
    public bool Equals(ConsulToken? other) => other is not null && string.Equals(secret, other.secret, StringComparison.Ordinal);

    /// <inheritdoc />
    public override bool Equals(object? obj) => Equals(obj as ConsulToken);

    /// <inheritdoc />
    public override int GetHashCode() => StringComparer.Ordinal.GetHashCode(secret);
}
