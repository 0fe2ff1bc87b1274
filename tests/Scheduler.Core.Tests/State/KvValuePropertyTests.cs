using CsCheck;
using Dtask.Core.Manifests;
using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Core.Tests.Manifests;
using Dtask.Core.Tests.Support;

namespace Dtask.Core.Tests.State;

/// <summary>
/// Generated and mutated KV values (the run records, node registrations, control requests and task spec envelopes the
/// daemons read; byte flips, truncation, splices, Unicode, deep and huge structures) through the decoders: a state
/// value decodes or is reported unreadable, never an exception; a task spec envelope parses or fails with a JSON error;
/// each in under a second of processor time and 200 MB; and generated valid values survive encode → decode unchanged.
/// </summary>
[Collection(nameof(ManifestPropertyTests))]
public sealed class KvValuePropertyTests
{
    private static readonly Gen<string> Word =
        Gen.Select(Gen.String[Gen.Char["abcdefghijklmnopqrstuvwxyz0123456789-éß"], 1, 20], Gen.OneOf("", "😀", "𝄞"), (text, extra) => text + extra);

    private static readonly Gen<string?> OptionalWord = Gen.Select(Gen.Bool, Word, (some, word) => some ? word : null);

    private static readonly Gen<DateTimeOffset> Instant =
        Gen.Long[0, 4_102_444_800].Select(s => DateTimeOffset.FromUnixTimeSeconds(s));

    private static readonly Gen<RunRecord> Run =
        from slot in Gen.Long[0, 4_102_444_800]
        from node in Word
        from state in Gen.Enum<RunState>()
        from started in Instant
        from attempt in Gen.Int[0, 5]
        from exit in Gen.Int[-1, 255].Nullable()
        from reason in OptionalWord
        from fence in Gen.Long[0, long.MaxValue]
        select new RunRecord
        {
            Slot = slot, RunId = $"{slot}-{node}", Node = node, State = state, StartedAt = started, Attempt = attempt,
            ExitCode = exit, Reason = reason, Fence = fence, FinishedAt = state == RunState.Running ? null : started.AddSeconds(1),
        };

    private static readonly Gen<NodeRecord> Node =
        from node in Word
        from labels in Gen.Dictionary(Word, Word)[0, 4]
        from started in Instant
        from skew in Gen.Double[-3600, 3600].Nullable()
        select new NodeRecord { Node = node, Labels = labels, Version = "1.0.0", StartedAt = started, Skew = skew };

    private static readonly Gen<ControlRequest> Control =
        from action in Gen.Enum<ControlAction>()
        from id in Word
        from at in Instant
        from requester in OptionalWord
        select new ControlRequest { Action = action, Id = id, RequestedAt = at, RequestedBy = requester };

    private static readonly string SpecEnvelope = KvTaskSpec.From(new ScheduledTask
    {
        Metadata = new ObjectMeta { Name = "nightly", Namespace = "ops" },
        Spec = new ScheduledTaskSpec { Schedule = "30 2 * * *", Shell = "echo hi", History = 10 },
    }, TaskOwner.Cli).ToJson();

    private static readonly Gen<string> Seed = Gen.Frequency(
        (2, Run.Select(StateJson.Serialize)),
        (1, Node.Select(StateJson.Serialize)),
        (1, Control.Select(StateJson.Serialize)),
        (1, Gen.Const(SpecEnvelope)));

    private static readonly Gen<string> Mutated = ManifestPropertyTests.MutatedFrom(Seed);

    [Fact]
    public void Mutated_values_decode_or_are_unreadable_never_an_exception_quickly() =>
        Mutated.Sample(Holds, iter: ManifestPropertyTests.Iterations(150), threads: 1,
            print: v => v.Length > 2000 ? v[..2000] + $"… ({v.Length} characters)" : v);

    [Fact]
    public void Valid_values_survive_encode_and_decode_unchanged()
    {
        Run.Sample(r => StateJson.TryDecode<RunRecord>(StateJson.Serialize(r), out _) == r, iter: ManifestPropertyTests.Iterations(100), threads: 1);
        Control.Sample(c => StateJson.TryDecode<ControlRequest>(StateJson.Serialize(c), out _) == c, iter: ManifestPropertyTests.Iterations(100), threads: 1);
        Node.Sample(n =>
        {
            var read = StateJson.TryDecode<NodeRecord>(StateJson.Serialize(n), out _);
            return read is not null && read with { Labels = n.Labels } == n && read.Labels.OrderBy(l => l.Key).SequenceEqual(n.Labels.OrderBy(l => l.Key));
        }, iter: ManifestPropertyTests.Iterations(100), threads: 1);
    }

    private static void Holds(string text)
    {
        // A KV value is bytes; the daemons read it as UTF-8 (a lone surrogate of the generated text cannot reach them).
        var value = System.Text.Encoding.UTF8.GetString(System.Text.Encoding.UTF8.GetBytes(text));
        Bounded.Run(() => Check(value), "decoded");
    }

    private static void Check(string value)
    {
        try
        {
            _ = StateJson.TryDecode<RunRecord>(value, out _);
            _ = StateJson.TryDecode<NodeRecord>(value, out _);
            _ = StateJson.TryDecode<ControlRequest>(value, out _);
        }
        catch (Exception e)
        {
            throw new InvalidOperationException($"a state decoder threw {e.GetType().Name}: {e.Message}", e);
        }

        try
        {
            _ = KvTaskSpec.Parse(value);
        }
        catch (System.Text.Json.JsonException)
        {
            // The documented failure: the reader reports the key unreadable.
        }
    }
}
