namespace Dtask.Executor.Notifications;

/// <summary>
/// A secret (a webhook URL, an API key). Its <see cref="ToString"/> never shows the value, so options records
/// that hold one can be logged; only <see cref="Reveal"/> gives it, at the point of use.
/// </summary>
public sealed class SecretText : IEquatable<SecretText>
{
    private readonly string value;

    /// <summary>Wraps a secret value.</summary>
    /// <param name="value">The value; not empty.</param>
    public SecretText(string value)
    {
        ArgumentException.ThrowIfNullOrEmpty(value);
        this.value = value;
    }

    /// <summary>The secret value itself. Never log it.</summary>
    /// <returns>The value.</returns>
    public string Reveal() => value;

    /// <summary>A fixed placeholder: never the value.</summary>
    /// <returns><c>(secret)</c>.</returns>
    public override string ToString() => "(secret)";

    /// <inheritdoc />
    public bool Equals(SecretText? other) => other is not null && string.Equals(value, other.value, StringComparison.Ordinal);

    /// <inheritdoc />
    public override bool Equals(object? obj) => Equals(obj as SecretText);

    /// <inheritdoc />
    public override int GetHashCode() => StringComparer.Ordinal.GetHashCode(value);
}
