using System.Security.Cryptography;
using System.Text;
using Dtask.Consul.Kv;
using Dtask.Core.Manifests;
using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Executor.Daemon;
using Dtask.Executor.Tests.Support;
using Dtask.Testing;

namespace Dtask.Executor.Tests.Acl;

/// <summary>
/// <see cref="TaskSpecReader"/> with trusted keys, value by value: a refused spec keeps the last verified one of the same
/// task, is reported once per value, and a task never verified does not run.
/// </summary>
public sealed class TaskSpecReaderSignatureTests
{
    private static readonly KvLayout Layout = new("dtask/");

    private static KvTaskSpec Envelope(string name, string command) => KvTaskSpec.From(new ScheduledTask
    {
        Metadata = new ObjectMeta { Name = name, Namespace = "ops" },
        Spec = new ScheduledTaskSpec { Every = "1m", Command = [command] },
    }, TaskOwner.Cli);

    private static KvPair Pair(KvTaskSpec envelope, ulong index) =>
        new(Layout.TaskKey(envelope.Namespace, envelope.Name), Encoding.UTF8.GetBytes(envelope.ToJson()), 0, 1, index, 0, null);

    [Fact]
    public void A_refused_spec_keeps_the_last_verified_one_is_reported_once_and_an_unverified_new_task_does_not_run()
    {
        using var folder = new TempDirectory();
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var trusted = TrustedSpecKeys.FromPemFiles([folder.Write("k.pub", key.ExportSubjectPublicKeyInfoPem())]);
        using var signer = SpecSigner.Of(ECDsa.Create(key.ExportParameters(true)));
        var sink = new CapturingSink();
        var reader = new TaskSpecReader(Layout, sink.CreateLogger(), trusted);
        var id = new TaskId("ops", "job");

        var first = reader.Read([Pair(signer.Sign(Envelope("job", "good")), 10)]);
        var forged = Pair(Envelope("job", "evil"), 11);
        var second = reader.Read([forged, Pair(Envelope("new", "evil"), 12)]);
        var refusals = reader.NewRefusals.ToList();
        var third = reader.Read([forged, Pair(Envelope("new", "evil"), 12)]);

        Assert.Equal(["good"], first[id].Spec.Command);
        Assert.Equal(["good"], second[id].Spec.Command);
        Assert.Equal(10UL, second[id].ModifyIndex);
        Assert.False(second.ContainsKey(new TaskId("ops", "new")));
        Assert.Equal([(id, 11UL, "it is not signed", (ulong?)10), (new TaskId("ops", "new"), 12UL, "it is not signed", (ulong?)null)], refusals);
        Assert.Empty(reader.NewRefusals);
        Assert.Equal(["good"], third[id].Spec.Command);
        Assert.Equal(2, sink.Events.Count(e => e.RenderMessage().Contains("is refused", StringComparison.Ordinal)));
    }
}
