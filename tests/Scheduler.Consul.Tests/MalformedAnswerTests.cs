using System.Net;
using System.Text;
using Dtask.Consul.Errors;
using Dtask.Consul.Kv;
using Dtask.Consul.Sessions;
using Dtask.Consul.Tests.Fixtures;
using Dtask.Consul.Txn;

namespace Dtask.Consul.Tests;

/// <summary>
/// Answers that pass through something between the client and the agent (a proxy cutting the body, an error page
/// with status 200) are a <see cref="ConsulException"/> naming the endpoint, never a JSON or null-reference exception.
/// </summary>
public sealed class MalformedAnswerTests(DevAgentFixture consul)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<string> Corruptions => new() { "truncate", "html", "null", "wrong-type", "deep", "no-key", "binary" };

    [Theory]
    [MemberData(nameof(Corruptions))]
    public async Task A_corrupted_answer_is_a_consul_exception_naming_the_endpoint(string corruption)
    {
        using var handler = new CorruptingHandler();
        using var client = new ConsulClient(consul.Agent.ClientOptions() with { ReadRetries = 0 }, handler);
        var prefix = "malformed/" + corruption + "/";
        Assert.True((await client.Kv.PutStringAsync(prefix + "a", "{\"x\":1}", cancellationToken: Ct)).Value);
        var session = (await client.Sessions.CreateAsync(new SessionRequest("malformed", TimeSpan.FromSeconds(30)), Ct)).Value;

        handler.Corruption = corruption;
        var calls = new (string Endpoint, Func<Task> Call)[]
        {
            ("/v1/kv/" + prefix + "a", () => client.Kv.GetAsync(prefix + "a", cancellationToken: Ct)),
            ("/v1/kv/" + prefix, () => client.Kv.ListAsync(prefix, cancellationToken: Ct)),
            ("/v1/txn", () => client.Txn.ExecuteAsync([TxnOp.Get(prefix + "a")], cancellationToken: Ct)),
            ("/v1/session/info/", () => client.Sessions.InfoAsync(session, cancellationToken: Ct)),
            ("/v1/session/renew/", () => client.Sessions.RenewAsync(session, Ct)),
        };
        foreach (var (endpoint, call) in calls)
        {
            var error = await Assert.ThrowsAnyAsync<ConsulException>(call);
            Assert.Contains(endpoint, error.Message, StringComparison.Ordinal);
            Assert.Contains("not what Consul sends", error.Message, StringComparison.Ordinal);
            Assert.True(error.Message.Length < 600, error.Message);
        }

        handler.Corruption = null;
        Assert.Equal("{\"x\":1}", (await client.Kv.GetAsync(prefix + "a", cancellationToken: Ct)).Value!.ValueAsString());
        await client.Sessions.DestroyAsync(session, Ct);
    }

    /// <summary>Passes requests to the real agent and, while <see cref="Corruption"/> is set, replaces its successful answers.</summary>
    private sealed class CorruptingHandler() : DelegatingHandler(new SocketsHttpHandler())
    {
        public volatile string? Corruption;

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var answer = await base.SendAsync(request, cancellationToken);
            if (Corruption is not { } corruption || answer.StatusCode != HttpStatusCode.OK)
            {
                return answer;
            }

            var body = await answer.Content.ReadAsByteArrayAsync(cancellationToken);
            var replaced = corruption switch
            {
                "truncate" => body[..(body.Length / 2)],
                "html" => Encoding.UTF8.GetBytes("<html><body><h1>502 Bad Gateway</h1></body></html>"),
                "null" => Encoding.UTF8.GetBytes("null"),
                "wrong-type" => Encoding.UTF8.GetBytes("{\"Key\":42,\"Results\":\"many\"}"),
                "deep" => Encoding.UTF8.GetBytes(new string('[', 100_000)),
                "no-key" => Encoding.UTF8.GetBytes("[{\"Value\":null,\"ID\":null}]"),
                _ => [0xff, 0xfe, 0x00, 0xc3, 0x28],
            };
            var corrupted = new HttpResponseMessage(HttpStatusCode.OK) { Content = new ByteArrayContent(replaced), RequestMessage = request };
            foreach (var header in answer.Headers)
            {
                corrupted.Headers.TryAddWithoutValidation(header.Key, header.Value);
            }
            answer.Dispose();
            return corrupted;
        }
    }
}
