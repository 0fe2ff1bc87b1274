using System.Text.Json;
using Dtask.Consul.Configuration;
using Dtask.Consul.Http;

namespace Dtask.Consul.Acl;

/// <summary>An ACL policy: HCL rules under a name.</summary>
public sealed record AclPolicy(string Id, string Name, string Rules);

/// <summary>An ACL token. <see cref="Secret"/> is what clients send; it prints as <c>[redacted]</c>.</summary>
public sealed record AclToken(string AccessorId, ConsulToken Secret, string Description, IReadOnlyList<string> Policies);

/// <summary>The ACL endpoints needed to provision and check dtask's tokens (<c>/v1/acl</c>).</summary>
public sealed class ConsulAcl
{
    private readonly ConsulTransport transport;

    internal ConsulAcl(ConsulTransport transport) => this.transport = transport;

    /// <summary>Creates a policy from HCL rules, e.g. <c>key_prefix "dtask/" { policy = "write" }</c>.</summary>
    public async Task<ConsulResponse<AclPolicy>> CreatePolicyAsync(string name, string rules, string? description = null, CancellationToken cancellationToken = default)
    {
        var body = JsonSerializer.SerializeToUtf8Bytes(new AclPolicyWire(null, name, description, rules), ConsulJsonContext.Default.AclPolicyWire);
        var request = new ConsulRequest(HttpMethod.Put, "/v1/acl/policy", "create ACL policy", $"'{name}'") { Body = body };
        var raw = await transport.SendAsync(request, cancellationToken).ConfigureAwait(false);
        var wire = raw.Decode(ConsulJsonContext.Default.AclPolicyWire);
        return raw.With(new AclPolicy(wire.ID ?? "", wire.Name, wire.Rules ?? ""));
    }

    /// <summary>Creates a token linked to policies (by name).</summary>
    public async Task<ConsulResponse<AclToken>> CreateTokenAsync(string description, IReadOnlyList<string> policyNames, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(policyNames);
        var wire = new AclTokenWire(null, null, description, [.. policyNames.Select(n => new AclLinkWire(null, n))]);
        var request = new ConsulRequest(HttpMethod.Put, "/v1/acl/token", "create ACL token", $"'{description}'")
        {
            Body = JsonSerializer.SerializeToUtf8Bytes(wire, ConsulJsonContext.Default.AclTokenWire),
        };
        var raw = await transport.SendAsync(request, cancellationToken).ConfigureAwait(false);
        return raw.With(Decode(raw));
    }

    /// <summary>Reads the token this client sends: checks that it exists and which policies it has.</summary>
    public async Task<ConsulResponse<AclToken>> ReadSelfAsync(CancellationToken cancellationToken = default)
    {
        var request = new ConsulRequest(HttpMethod.Get, "/v1/acl/token/self", "read ACL token", "GET /v1/acl/token/self") { Read = QueryOptions.None };
        var raw = await transport.SendAsync(request, cancellationToken).ConfigureAwait(false);
        return raw.With(Decode(raw));
    }

    /// <summary>Deletes a token by its accessor id.</summary>
    public async Task<ConsulResponse<bool>> DeleteTokenAsync(string accessorId, CancellationToken cancellationToken = default)
    {
        var request = new ConsulRequest(HttpMethod.Delete, "/v1/acl/token/" + Uri.EscapeDataString(accessorId), "delete ACL token", accessorId);
        var raw = await transport.SendAsync(request, cancellationToken).ConfigureAwait(false);
        return raw.With(true);
    }

    private static AclToken Decode(ConsulRawResponse raw)
    {
        var wire = raw.Decode(ConsulJsonContext.Default.AclTokenWire);
        return new AclToken(wire.AccessorID ?? "", new ConsulToken(wire.SecretID ?? "-"), wire.Description ?? "",
            [.. (wire.Policies ?? []).Select(p => p.Name ?? p.ID ?? "")]);
    }
}

internal sealed record AclPolicyWire(string? ID, string Name, string? Description, string? Rules);

internal sealed record AclTokenWire(string? AccessorID, string? SecretID, string? Description, List<AclLinkWire>? Policies);

internal sealed record AclLinkWire(string? ID, string? Name);
