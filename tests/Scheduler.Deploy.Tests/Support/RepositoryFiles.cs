namespace Dtask.Deploy.Tests.Support;

/// <summary>Reads files of the repository.</summary>
internal static class RepositoryFiles
{
    public static string ReadText(params string[] parts) => File.ReadAllText(Dtask.Testing.RepositoryRoot.Combine(parts));
}
