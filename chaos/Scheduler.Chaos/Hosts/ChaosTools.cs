using System.Diagnostics;
using Dtask.Testing;

namespace Dtask.Chaos.Hosts;

/// <summary>
/// The tools the chaos run needs beside Consul: <c>ip</c> (network namespaces, veth pairs), <c>nft</c> (drop rules) and
/// libfaketime (executors on a wrong clock), as <c>scripts/install-chaos-tools.sh</c> installs them under
/// <c>.tools/root</c>. A missing tool is an error naming it and how to install it; the run never goes on without it.
/// </summary>
/// <param name="Ip">The <c>ip</c> executable.</param>
/// <param name="Nft">The <c>nft</c> executable.</param>
/// <param name="NftLibraries">The folder of the libraries <c>nft</c> was extracted with (its <c>LD_LIBRARY_PATH</c>), or null.</param>
/// <param name="Libfaketime">The path of <c>libfaketime.so.1</c>.</param>
public sealed record ChaosTools(string Ip, string Nft, string? NftLibraries, string Libfaketime)
{
    private const string Install = "run `bash scripts/install-chaos-tools.sh` (make test and make chaos do)";

    /// <summary>Finds the tools under <paramref name="repository"/>'s <c>.tools/root</c> or on the system.</summary>
    /// <exception cref="InvalidOperationException">A tool is missing, or network namespaces cannot be made (not root).</exception>
    public static ChaosTools Find(string? repository = null)
    {
        repository ??= RepositoryRoot.Find(AppContext.BaseDirectory);
        var local = repository is null ? null : Path.Combine(repository, ".tools", "root");
        var ip = OnPath("ip") ?? throw new InvalidOperationException($"the chaos run needs `ip` (iproute2) for network namespaces: {Install}");
        string? nft = null, nftLibraries = null;
        if (local is not null && File.Exists(Path.Combine(local, "usr", "sbin", "nft")))
        {
            nft = Path.Combine(local, "usr", "sbin", "nft");
            nftLibraries = Path.Combine(local, "usr", "lib", "x86_64-linux-gnu");
        }

        nft ??= OnPath("nft") ?? throw new InvalidOperationException($"the chaos run needs `nft` (nftables) for partitions by drop rule: {Install}");
        string[] roots = [.. local is null ? [] : new[] { local }, "/usr/lib"];
        var faketime = roots.Where(Directory.Exists)
            .Select(r => Directory.EnumerateFiles(r, "libfaketime.so.1", SearchOption.AllDirectories).FirstOrDefault())
            .FirstOrDefault(f => f is not null)
            ?? throw new InvalidOperationException($"the chaos run needs libfaketime (libfaketime.so.1) for executors on a wrong clock: {Install}");
        if (!string.Equals(Environment.UserName, "root", StringComparison.Ordinal) && Environment.GetEnvironmentVariable("USER") != "root" && !IsRoot())
        {
            throw new InvalidOperationException("the chaos run creates network namespaces and veth pairs: it must run as root");
        }

        return new ChaosTools(ip, nft, nftLibraries, faketime);
    }

    /// <summary>Runs <paramref name="file"/> with <paramref name="arguments"/> and waits; throws with its error output when it fails.</summary>
    public static string Run(string file, IEnumerable<string> arguments, string? standardInput = null, IReadOnlyDictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = standardInput is not null,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[name] = value;
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {file}");
        if (standardInput is not null)
        {
            process.StandardInput.Write(standardInput);
            process.StandardInput.Close();
        }

        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', start.ArgumentList)} failed ({process.ExitCode}): {error.Trim()}");
        }

        return output.Result;
    }

    /// <summary>Runs <c>nft</c> inside network namespace <paramref name="netns"/> with <paramref name="script"/> on its standard input.</summary>
    public void NftIn(string netns, string script)
    {
        var environment = NftLibraries is null ? null : new Dictionary<string, string> { ["LD_LIBRARY_PATH"] = NftLibraries };
        Run(Ip, ["netns", "exec", netns, Nft, "-f", "-"], script, environment);
    }

    private static bool IsRoot()
    {
        try
        {
            return File.ReadAllLines("/proc/self/status").Any(l => l.StartsWith("Uid:", StringComparison.Ordinal) && l.Split('\t', StringSplitOptions.RemoveEmptyEntries)[1] == "0");
        }
        catch (IOException)
        {
            return false;
        }
    }

    private static string? OnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Concat(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
            .Select(folder => Path.Combine(folder, name))
            .FirstOrDefault(File.Exists);
}
