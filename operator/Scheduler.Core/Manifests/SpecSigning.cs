using System.Security.Cryptography;
using System.Text;

namespace Dtask.Core.Manifests;

/// <summary>The signature of a task envelope: which key signed it and the signature (base64, IEEE P1363, SHA-256).</summary>
/// <param name="KeyId">The first 16 hex digits of the SHA-256 of the signing key's public key (SubjectPublicKeyInfo).</param>
/// <param name="Value">The base64 ECDSA P-256 signature of <see cref="SpecSigning.Payload"/>.</param>
public sealed record SpecSignature(string KeyId, string Value);

/// <summary>A signing or trusted key that cannot be used; the message names the file and the reason, never the key.</summary>
public sealed class SpecKeyException(string message) : Exception(message);

/// <summary>
/// What a task spec's signature covers: the envelope without its signature (namespace, name, generation, owner,
/// spec, resume time), in canonical JSON behind the domain tag <c>dtask-spec-v1</c>. A signature made for one task
/// therefore verifies for no other task, and no field can change without breaking it.
/// </summary>
public static class SpecSigning
{
    private const string Domain = "dtask-spec-v1\n";

    /// <summary>The bytes signed for <paramref name="envelope"/>.</summary>
    public static byte[] Payload(KvTaskSpec envelope)
    {
        ArgumentNullException.ThrowIfNull(envelope);
        return Encoding.UTF8.GetBytes(Domain + TaskJson.CanonicalOf(envelope with { Signature = null }));
    }

    /// <summary>The id of a public key: the first 16 hex digits of the SHA-256 of its SubjectPublicKeyInfo.</summary>
    public static string KeyId(ECDsa key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return Convert.ToHexStringLower(SHA256.HashData(key.ExportSubjectPublicKeyInfo()))[..16];
    }

    /// <summary>Reads one P-256 key (private or public, PEM) from <paramref name="path"/>; <paramref name="what"/> names it in errors.</summary>
    internal static ECDsa ReadKey(string path, string what)
    {
        string pem;
        try
        {
            pem = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new SpecKeyException($"{what} {path}: cannot be read: {e.Message}");
        }

        var key = ECDsa.Create();
        try
        {
            key.ImportFromPem(pem);
        }
        catch (Exception e) when (e is ArgumentException or CryptographicException)
        {
            key.Dispose();
            throw new SpecKeyException($"{what} {path}: not a PEM EC key (openssl ecparam -name prime256v1 -genkey -noout | openssl pkcs8 -topk8 -nocrypt makes one)");
        }

        if (key.KeySize != 256)
        {
            key.Dispose();
            throw new SpecKeyException($"{what} {path}: an EC key on a {key.KeySize}-bit curve; dtask signs with P-256 (prime256v1) keys only");
        }

        return key;
    }
}

/// <summary>Signs task envelopes with one P-256 private key (<c>dtask apply --signing-key</c>, <c>dtask operator --signing-key</c>).</summary>
public sealed class SpecSigner : IDisposable
{
    private readonly ECDsa key;

    private SpecSigner(ECDsa key)
    {
        this.key = key;
        KeyId = SpecSigning.KeyId(key);
    }

    /// <summary>The id of the key's public half, as signatures carry it.</summary>
    public string KeyId { get; }

    /// <summary>Reads a PEM private key (PKCS#8 or SEC1 "EC PRIVATE KEY").</summary>
    /// <exception cref="SpecKeyException">The file cannot be read, holds no private key, or the key is not P-256.</exception>
    public static SpecSigner FromPemFile(string path)
    {
        var key = SpecSigning.ReadKey(path, "signing key");
        try
        {
            _ = key.ExportParameters(includePrivateParameters: true);
        }
        catch (CryptographicException)
        {
            key.Dispose();
            throw new SpecKeyException($"signing key {path}: holds a public key only; a signing key is the private key");
        }

        return new SpecSigner(key);
    }

    /// <summary>Creates a signer of a key made elsewhere (tests); the signer owns it.</summary>
    public static SpecSigner Of(ECDsa key) => new(key ?? throw new ArgumentNullException(nameof(key)));

    /// <summary><paramref name="envelope"/> with this key's signature.</summary>
    public KvTaskSpec Sign(KvTaskSpec envelope)
    {
        var signature = key.SignData(SpecSigning.Payload(envelope), HashAlgorithmName.SHA256);
        return envelope with { Signature = new SpecSignature(KeyId, Convert.ToBase64String(signature)) };
    }

    /// <summary>True when <paramref name="envelope"/> carries a signature by this key (so an unchanged spec needs no rewrite).</summary>
    public bool HasSigned(KvTaskSpec envelope) => envelope?.Signature?.KeyId == KeyId;

    /// <inheritdoc />
    public void Dispose() => key.Dispose();

    /// <inheritdoc />
    public override string ToString() => $"signing key {KeyId}";
}

/// <summary>
/// The public keys an executor accepts signatures of (<c>--trusted-keys</c>). More than one at once, so a key can be
/// rotated: trust the new key, re-sign with it, then drop the old one.
/// </summary>
public sealed class TrustedSpecKeys : IDisposable
{
    private readonly Dictionary<string, ECDsa> keys;

    private TrustedSpecKeys(Dictionary<string, ECDsa> keys) => this.keys = keys;

    /// <summary>The ids of the trusted keys.</summary>
    public IReadOnlyCollection<string> KeyIds => keys.Keys;

    /// <summary>Reads one PEM public (or private) key per file.</summary>
    /// <exception cref="SpecKeyException">A file cannot be read or holds no P-256 key.</exception>
    public static TrustedSpecKeys FromPemFiles(IEnumerable<string> paths)
    {
        ArgumentNullException.ThrowIfNull(paths);
        var keys = new Dictionary<string, ECDsa>(StringComparer.Ordinal);
        try
        {
            foreach (var path in paths)
            {
                var key = SpecSigning.ReadKey(path, "trusted key");
                if (!keys.TryAdd(SpecSigning.KeyId(key), key))
                {
                    key.Dispose();
                }
            }
        }
        catch
        {
            foreach (var key in keys.Values)
            {
                key.Dispose();
            }

            throw;
        }

        return keys.Count == 0 ? throw new SpecKeyException("--trusted-keys: no key given") : new TrustedSpecKeys(keys);
    }

    /// <summary>Null when <paramref name="envelope"/>'s signature verifies with a trusted key; otherwise why not.</summary>
    public string? Verify(KvTaskSpec envelope)
    {
        ArgumentNullException.ThrowIfNull(envelope);
        if (envelope.Signature is not { } signature)
        {
            return "it is not signed";
        }

        if (signature.KeyId is null || !keys.TryGetValue(signature.KeyId, out var key))
        {
            return $"it is signed by key {signature.KeyId ?? "(none)"}, which is not trusted";
        }

        Span<byte> bytes = stackalloc byte[128];
        if (signature.Value is null || !Convert.TryFromBase64String(signature.Value, bytes, out var length))
        {
            return "its signature is not base64";
        }

        return key.VerifyData(SpecSigning.Payload(envelope), bytes[..length], HashAlgorithmName.SHA256)
            ? null
            : $"its signature by key {signature.KeyId} does not verify (the spec was changed after it was signed, or signed for another task)";
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var key in keys.Values)
        {
            key.Dispose();
        }
    }
}
