namespace Dtask.Consul.Configuration;

/// <summary>The Consul settings (environment variables or options) are invalid or unreadable.</summary>
public sealed class ConsulConfigurationException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ConsulConfigurationException(string message) : base(message) { }

    /// <summary>Creates the exception with its cause.</summary>
    public ConsulConfigurationException(string message, Exception inner) : base(message, inner) { }

    /// <summary>Creates the exception.</summary>
    public ConsulConfigurationException() { }
}
