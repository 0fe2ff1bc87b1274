using System.Security.Cryptography;
using Dtask.Executor.Tests.Cli;
using Dtask.Executor.Tests.Daemon;
using Dtask.Executor.Tests.Support;

namespace Dtask.Executor.Tests.Acl;

/// <summary>
/// Signed task specs, with real processes: <c>dtask apply --signing-key</c> signs, an executor started with
/// <c>--trusted-keys</c> runs only what verifies. A spec written without the key (a leaked token's write) is refused,
/// logged once, shown by <c>dtask describe</c>, and the last verified spec keeps running; a second trusted key rotates.
/// </summary>
public sealed class SignedSpecTests(ConsulFixture consul)
{
    [Fact]
    public async Task An_executor_with_trusted_keys_runs_signed_specs_refuses_an_unsigned_or_foreign_one_once_and_keeps_the_verified_one_running()
    {
        await using var world = new DaemonWorld(consul.Agent.Address, consul.NewClient());
        var (oldKey, oldPublic) = KeyPair(world, "old");
        var (newKey, newPublic) = KeyPair(world, "new");
        var (rogueKey, _) = KeyPair(world, "rogue");
        var ran = world.PathOf("ran");
        var executor = world.Start("node-0", null, "--trusted-keys", $"{oldPublic},{newPublic}");
        await executor.ReadyAsync();

        // v1, signed with a trusted key, runs.
        Assert.Equal(0, (await ApplyAsync(world, "v1", ran, "--signing-key", oldKey)).ExitCode);
        Assert.True(await Eventually.TrueAsync(() => Versions(world).Contains("v1"), TimeSpan.FromSeconds(30)), "the signed spec did not run:\n" + executor.Output);

        // v2, written without the key, is refused and logged; v1 keeps running.
        var unsigned = await ApplyAsync(world, "v2", ran);
        Assert.True(unsigned.ExitCode == 0, unsigned.Error);
        Assert.True(await executor.WaitForAsync("is refused: its signature is refused: it is not signed", TimeSpan.FromSeconds(30)), executor.Output);
        var linesAtRefusal = world.ReadLines("ran").Length;
        Assert.True(await Eventually.TrueAsync(() => world.ReadLines("ran").Skip(linesAtRefusal).Count(l => l.StartsWith("v1 ", StringComparison.Ordinal)) >= 2, TimeSpan.FromSeconds(30)),
            "the verified spec stopped running after an unsigned one was refused:\n" + executor.Output);
        var describe = await DtaskProcess.RunAsync("describe", "ops/job", "--prefix", world.Prefix, "--consul", world.Consul.ToString());
        Assert.Equal(0, describe.ExitCode);
        Assert.Matches(@"Refused:\s+by executor node-0: it is not signed; executors keep running the verified spec of index \d+", describe.Output);
        Assert.Matches(@"Verified\s+False\s+SignatureRefused", describe.Output);

        // v3, signed by a key the executor does not trust, is refused just the same.
        Assert.Equal(0, (await ApplyAsync(world, "v3", ran, "--signing-key", rogueKey)).ExitCode);
        Assert.True(await executor.WaitForAsync("which is not trusted", TimeSpan.FromSeconds(30)), executor.Output);

        // Rotation: the second trusted key signs v4, which replaces v1.
        Assert.Equal(0, (await ApplyAsync(world, "v4", ran, "--signing-key", newKey)).ExitCode);
        Assert.True(await Eventually.TrueAsync(() => Versions(world).Contains("v4"), TimeSpan.FromSeconds(30)), "the spec signed with the second key did not run:\n" + executor.Output);
        var after = await DtaskProcess.RunAsync("describe", "ops/job", "--prefix", world.Prefix, "--consul", world.Consul.ToString());
        Assert.DoesNotContain("Refused:", after.Output, StringComparison.Ordinal);

        // Suspend and resume, signed with the key: both accepted, and v4 runs again after the resume.
        var suspended = await DtaskProcess.RunAsync("suspend", "ops/job", "--signing-key", newKey, "--prefix", world.Prefix, "--consul", world.Consul.ToString());
        Assert.True(suspended.ExitCode == 0, suspended.Error);
        Assert.True(await executor.WaitForAsync("task ops/job suspended; no slot fires until it is resumed", TimeSpan.FromSeconds(30)), executor.Output);
        var resumed = await DtaskProcess.RunAsync("resume", "ops/job", "--signing-key", newKey, "--prefix", world.Prefix, "--consul", world.Consul.ToString());
        Assert.True(resumed.ExitCode == 0, resumed.Error);
        var linesAtResume = world.ReadLines("ran").Length;
        Assert.True(await Eventually.TrueAsync(() => world.ReadLines("ran").Skip(linesAtResume).Any(l => l.StartsWith("v4 ", StringComparison.Ordinal)), TimeSpan.FromSeconds(30)),
            "the signed resume did not run the task again:\n" + executor.Output);

        Assert.Equal(0, await executor.StopAsync());
        Assert.DoesNotContain("v2", Versions(world));
        Assert.DoesNotContain("v3", Versions(world));
        Assert.Equal(1, executor.Lines.Count(l => l.Contains("it is not signed", StringComparison.Ordinal)));
        Assert.DoesNotContain("PRIVATE KEY", executor.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Bad_signing_and_trusted_key_files_are_refused_with_the_option_and_the_file_named()
    {
        await using var world = new DaemonWorld(consul.Agent.Address, consul.NewClient());
        var (_, publicKey) = KeyPair(world, "k");
        var garbage = world.PathOf("garbage.pem");
        await File.WriteAllTextAsync(garbage, "not a key", TestContext.Current.CancellationToken);
        var manifest = world.PathOf("job.yaml");
        await File.WriteAllTextAsync(manifest, Manifest("v1", world.PathOf("ran")), TestContext.Current.CancellationToken);

        var publicOnly = await DtaskProcess.RunAsync("apply", "-f", manifest, "--signing-key", publicKey, "--prefix", world.Prefix, "--consul", world.Consul.ToString());
        var notAKey = await DtaskProcess.RunAsync("apply", "-f", manifest, "--signing-key", garbage, "--prefix", world.Prefix, "--consul", world.Consul.ToString());
        var executor = world.Start("node-0", null, "--trusted-keys", garbage);

        Assert.Equal(2, publicOnly.ExitCode);
        Assert.Contains($"--signing-key: signing key {publicKey}: holds a public key only", publicOnly.Error, StringComparison.Ordinal);
        Assert.Equal(2, notAKey.ExitCode);
        Assert.Contains($"--signing-key: signing key {garbage}: not a PEM EC key", notAKey.Error, StringComparison.Ordinal);
        Assert.Equal(78, await executor.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains($"--trusted-keys: trusted key {garbage}: not a PEM EC key", executor.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", publicOnly.Error + notAKey.Error + executor.Output, StringComparison.Ordinal);
        Assert.Null((await world.Client.Kv.GetAsync(world.Layout.TaskKey("ops", "job"), cancellationToken: TestContext.Current.CancellationToken)).Value);
    }

    private static (string PrivateKey, string PublicKey) KeyPair(DaemonWorld world, string name)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var privatePath = world.PathOf(name + ".key");
        var publicPath = world.PathOf(name + ".pub");
        File.WriteAllText(privatePath, key.ExportPkcs8PrivateKeyPem());
        File.WriteAllText(publicPath, key.ExportSubjectPublicKeyInfoPem());
        return (privatePath, publicPath);
    }

    private static async Task<DtaskExit> ApplyAsync(DaemonWorld world, string version, string ran, params string[] extra)
    {
        var manifest = world.PathOf($"job-{version}.yaml");
        await File.WriteAllTextAsync(manifest, Manifest(version, ran), TestContext.Current.CancellationToken);
        return await DtaskProcess.RunAsync(["apply", "-f", manifest, "--prefix", world.Prefix, "--consul", world.Consul.ToString(), .. extra]);
    }

    private static string Manifest(string version, string ran) => $"""
        apiVersion: dtask.dev/v1alpha1
        kind: ScheduledTask
        metadata:
          name: job
          namespace: ops
        spec:
          every: 1s
          shell: 'echo "{version} $DTASK_SLOT" >> {ran}'
        """;

    private static HashSet<string> Versions(DaemonWorld world) => [.. world.ReadLines("ran").Select(l => l.Split(' ')[0])];
}
