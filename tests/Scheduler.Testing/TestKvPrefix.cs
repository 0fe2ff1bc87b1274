namespace Dtask.Testing;

/// <summary>Random KV prefixes, so that tests sharing one agent never see each other's keys.</summary>
public static class TestKvPrefix
{
    /// <summary>A new prefix such as <c>test-3f2c…/</c>, optionally below <paramref name="parent"/> (which ends with '/').</summary>
    public static string New(string parent = "") => $"{parent}test-{Guid.NewGuid():N}/";
}
