using System.Text.Json.Serialization;
using Dtask.Consul.Acl;
using Dtask.Consul.Kv;
using Dtask.Consul.Sessions;
using Dtask.Consul.Txn;

namespace Dtask.Consul.Http;

/// <summary>The wire shapes of Consul's JSON, source-generated (no reflection, trimming-safe).</summary>
[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(List<KvPairWire>))]
[JsonSerializable(typeof(List<string>))]
[JsonSerializable(typeof(string))]
[JsonSerializable(typeof(bool))]
[JsonSerializable(typeof(List<TxnOpWire>))]
[JsonSerializable(typeof(TxnResponseWire))]
[JsonSerializable(typeof(SessionCreateWire))]
[JsonSerializable(typeof(SessionIdWire))]
[JsonSerializable(typeof(List<SessionWire>))]
[JsonSerializable(typeof(AclPolicyWire))]
[JsonSerializable(typeof(AclTokenWire))]
internal sealed partial class ConsulJsonContext : JsonSerializerContext;
