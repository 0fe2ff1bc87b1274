using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using CsCheck;
using Dtask.Core.Manifests;
using Dtask.Core.Model;
using Dtask.Core.Tests.Support;

namespace Dtask.Core.Tests.Manifests;

/// <summary>
/// Generated and mutated manifests (byte flips, truncation, splices of valid documents, Unicode, huge and deep
/// structures, alias chains) through the manifest reader: each input gives documents, never an exception, in under a
/// second of processor time and 200 MB of allocations; each valid task survives manifest → KV JSON → spec unchanged. A few hundred cases
/// run in every test run; <c>DTASK_PROPERTY_ITERATIONS</c> (<c>make fuzz</c>) runs more. A failing input is written to
/// <c>tests/fixtures/property/</c>, where <see cref="Every_kept_input_holds_the_properties"/> reads it from then on.
/// </summary>
[Collection(nameof(ManifestPropertyTests))]
public sealed class ManifestPropertyTests
{
    private const string FixtureFolder = "tests/fixtures/property";

    internal static long Iterations(long normal) =>
        long.TryParse(Environment.GetEnvironmentVariable("DTASK_PROPERTY_ITERATIONS"), NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0 ? n : normal;

    /// <summary>The valid and invalid manifests of the repository, the seeds of the mutations.</summary>
    private static readonly string[] Corpus =
    [
        .. RepoFiles.Yaml("examples").Concat(RepoFiles.Yaml("tests/fixtures/invalid")).Select(f => File.ReadAllText(RepoFiles.Path(f))),
    ];

    private static readonly string[] Hostile = ["[", "]", "{", "}", ":", ": ", "- ", "&a ", "*a", "!!str ", "!!binary ", "\"", "'", "|", ">", "#", "\n", "\t", "---\n", "...\n", "%YAML 1.2\n", "? ", ",", "\\", "\0", "\uFEFF", "\u2028", "\u202E", "😀", "\uD800", "é", "ｆ", "<<: *a\n"];

    private static readonly string[] Crons = ["30 2 * * *", "*/15 * * * *", "0 9 * * 1-5", "H H * * *", "0 0 1 * *"];

    private static readonly string[] Everies = ["1m", "90s", "2h", "5m30s", "1h15m"];

    private static readonly string?[] Zones = [null, "UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata"];

    /// <summary>Text with letters of many scripts, emoji, combining marks, quotes, backslashes, tabs and newlines (no NUL, no lone surrogate).</summary>
    private static readonly Gen<string> Text = Gen.Frequency(
            (6, Gen.Char["abcdefghijklmnopqrstuvwxyz ABCXYZ0123456789-_./=:#&*!|>'\"\\{}[],%@`?"]),
            (2, Gen.Char['\u00A0', '\u07FF']),
            (2, Gen.Char['\u0800', '\uD7FF']),
            (1, Gen.Char["\t\n\u200B\u202E\u2028\uFEFF"]))
        .Array[0, 40]
        .Select(Gen.OneOf("", "😀", "𝄞", "e\u0301"), (chars, extra) => new string(chars) + extra);

    private static readonly Gen<ScheduledTask> ValidTask =
        from name in Gen.String[Gen.Char["abcdefghijklmnopqrstuvwxyz0123456789-"], 0, 30]
        from ns in Gen.OneOf<string?>(null, "default", "ops", "team-7")
        from cron in Gen.Bool
        from schedule in Gen.OneOf(Crons)
        from every in Gen.OneOf(Everies)
        from zone in Gen.OneOf(Zones)
        from command in Text.Array[0, 4]
        from env in Gen.Select(Gen.String[Gen.Char["ABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789"], 0, 12], Text).Array[0, 3]
        from suspend in Gen.OneOf<bool?>(null, true, false)
        from policy in Gen.OneOf<ConcurrencyPolicy?>(null, ConcurrencyPolicy.Forbid, ConcurrencyPolicy.Replace)
        from history in Gen.OneOf<int?>(null, 1, 10, 1000)
        select new ScheduledTask
        {
            ApiVersion = ScheduledTask.ApiVersionValue,
            Kind = ScheduledTask.KindValue,
            Metadata = new ObjectMeta { Name = "t" + name.TrimEnd('-') + "x", Namespace = ns },
            Spec = new ScheduledTaskSpec
            {
                Schedule = cron ? schedule : null,
                Every = cron ? null : every,
                TimeZone = cron ? zone : null,
                Command = ["/bin/p" + string.Concat(command.Take(1)).Replace("\n", "", StringComparison.Ordinal).Trim(), .. command.Skip(1)],
                Env = env.Length == 0 ? null : [.. env.DistinctBy(e => e.Item1).Select(e => new EnvVar { Name = "V" + e.Item1, Value = e.Item2 })],
                Suspend = suspend,
                ConcurrencyPolicy = policy,
                History = history,
            },
        };

    /// <summary>A valid task as YAML: block style with double-quoted scalars, or the JSON form (which YAML 1.2 reads too).</summary>
    private static readonly Gen<(ScheduledTask Task, string Yaml)> ValidManifest =
        Gen.Select(ValidTask, Gen.Bool, (task, json) => (task, json ? TaskJson.Serialize(task) : Block(task)));

    private static string Block(ScheduledTask task)
    {
        static string Q(string s) => JsonSerializer.Serialize(s);
        var spec = task.Spec;
        var yaml = new StringBuilder();
        yaml.Append(CultureInfo.InvariantCulture, $"apiVersion: {task.ApiVersion}\nkind: {task.Kind}\nmetadata:\n  name: {Q(task.Metadata.Name!)}\n");
        if (task.Metadata.Namespace is { } ns)
        {
            yaml.Append(CultureInfo.InvariantCulture, $"  namespace: {ns}\n");
        }

        yaml.Append("spec:\n");
        yaml.Append(spec.Schedule is { } schedule ? $"  schedule: {Q(schedule)}\n" : $"  every: {spec.Every}\n");
        if (spec.TimeZone is { } zone)
        {
            yaml.Append(CultureInfo.InvariantCulture, $"  timeZone: {zone}\n");
        }

        yaml.Append("  command:\n");
        foreach (var argument in spec.Command!)
        {
            yaml.Append(CultureInfo.InvariantCulture, $"    - {Q(argument)}\n");
        }

        if (spec.Env is { } env)
        {
            yaml.Append("  env:\n");
            foreach (var variable in env)
            {
                yaml.Append(CultureInfo.InvariantCulture, $"    - name: {variable.Name}\n      value: {Q(variable.Value!)}\n");
            }
        }

        if (spec.Suspend is { } suspend)
        {
            yaml.Append(CultureInfo.InvariantCulture, $"  suspend: {(suspend ? "true" : "false")}\n");
        }

        if (spec.ConcurrencyPolicy is { } policy)
        {
            yaml.Append(CultureInfo.InvariantCulture, $"  concurrencyPolicy: {policy}\n");
        }

        if (spec.History is { } history)
        {
            yaml.Append(CultureInfo.InvariantCulture, $"  history: {history}\n");
        }

        return yaml.ToString();
    }

    /// <summary>Seeds: the repository's manifests and generated valid ones.</summary>
    private static readonly Gen<string> Seed = Gen.Frequency((1, Gen.OneOf(Corpus)), (1, ValidManifest.Select(m => m.Yaml)));

    /// <summary>The seeds, mutated.</summary>
    private static readonly Gen<string> Mutated = MutatedFrom(Seed);

    /// <summary>A seed mutated one to three times (byte flips, truncation, splices, Unicode, deep, huge, aliases, duplicates), each way drawn from a random number so a failure replays from CsCheck's seed.</summary>
    internal static Gen<string> MutatedFrom(Gen<string> seed) =>
        Gen.Select(seed, seed, Gen.Int[0, 7].Array[1, 3], Gen.Int, (text, other, kinds, number) =>
        {
            var random = new Random(number);
            foreach (var kind in kinds)
            {
                text = Mutate(text, other, kind, random);
            }

            return text;
        });

#pragma warning disable CA5394 // The mutations need repeatable randomness, not secrecy.
    private static string Mutate(string text, string other, int kind, Random random)
    {
        int At(string s) => s.Length == 0 ? 0 : random.Next(s.Length + 1);
        switch (kind)
        {
            case 0: // Flip bytes: replace a few characters with hostile ones or random code units.
            {
                var chars = new StringBuilder(text);
                for (var i = random.Next(1, 9); i > 0 && chars.Length > 0; i--)
                {
                    var at = random.Next(chars.Length);
                    chars.Remove(at, 1).Insert(at, random.Next(2) == 0 ? Hostile[random.Next(Hostile.Length)] : ((char)random.Next(0, 0x10000)).ToString());
                }

                return chars.ToString();
            }

            case 1: // Truncate.
                return text[..At(text)];
            case 2: // Splice: the start of one document and the end of another.
                return text[..At(text)] + (random.Next(2) == 0 ? "\n---\n" : "") + other[At(other)..];
            case 3: // Unicode and control characters inserted.
            {
                var at = At(text);
                var insert = string.Concat(Enumerable.Range(0, random.Next(1, 6)).Select(_ => Hostile[random.Next(Hostile.Length)]));
                return text[..at] + insert + text[at..];
            }

            case 4: // Deep: nested flow or block collections.
            {
                var depth = random.Next(10, 100_000);
                var at = At(text);
                var nest = random.Next(3) switch
                {
                    0 => new string('[', depth),
                    1 => string.Concat(Enumerable.Repeat("{a: ", Math.Min(depth, 20_000))),
                    _ => string.Concat(Enumerable.Range(0, Math.Min(depth, 2_000)).Select(i => "\n" + new string(' ', i) + "- ")),
                };
                return text[..at] + nest + text[at..];
            }

            case 5: // Huge: a long scalar, many lines, or a long flat list.
            {
                var at = At(text);
                var huge = random.Next(3) switch
                {
                    0 => new string('x', random.Next(1, 400_000)),
                    1 => string.Concat(Enumerable.Repeat("k: v\n", random.Next(1, 200_000))),
                    _ => "[" + string.Join(",", Enumerable.Repeat("1", random.Next(1, 300_000))) + "]",
                };
                return text[..at] + huge + text[at..];
            }

            case 6: // Anchors and aliases: a bomb of random fan-out and depth.
            {
                var fan = random.Next(1, 12);
                var levels = random.Next(1, 12);
                var bomb = new StringBuilder("b0: &b0 [x]\n");
                for (var level = 1; level < levels; level++)
                {
                    bomb.Append(CultureInfo.InvariantCulture, $"b{level}: &b{level} [{string.Join(", ", Enumerable.Repeat($"*b{level - 1}", fan))}]\n");
                }

                return bomb + text;
            }

            default: // Duplicated documents and keys.
                return text + "\n---\n" + text + (random.Next(2) == 0 ? "\nspec: {}\n" : "");
        }
    }
#pragma warning restore CA5394

    /// <summary>The properties every input must hold (within <see cref="Bounded"/>); throws with a reason when one does not.</summary>
    internal static void Holds(string yaml) => Bounded.Run(() => Check(yaml), "read");

    private static void Check(string yaml)
    {
        IReadOnlyList<ManifestDocument> documents;
        try
        {
            documents = ManifestReader.ReadText(yaml, "p.yaml");
        }
        catch (Exception e)
        {
            throw new InvalidOperationException($"the reader threw {e.GetType().Name}: {e.Message}", e);
        }

        foreach (var document in documents)
        {
            if (document.IsValid)
            {
                RoundTrip(document.Task!);
            }
            else if (document.Errors.Count == 0)
            {
                throw new InvalidOperationException($"{document.Source} is invalid without an error");
            }
        }
    }

    /// <summary>manifest → KV JSON → spec changes nothing: the same canonical spec, hash and JSON text.</summary>
    private static void RoundTrip(ScheduledTask task)
    {
        var envelope = KvTaskSpec.From(task, TaskOwner.Cli);
        var json = envelope.ToJson();
        var read = KvTaskSpec.Parse(json);
        if (TaskJson.Canonical(read.Spec) != TaskJson.Canonical(task.Spec) || read.SpecHash != TaskJson.SpecHash(read.Spec) || read.ToJson() != json)
        {
            throw new InvalidOperationException($"the round trip through KV changed the task:\n{json}\n{read.ToJson()}");
        }
    }

    /// <summary>Runs <paramref name="gen"/>; a failing input is kept under <see cref="FixtureFolder"/> before the failure is reported.</summary>
    private static void Sample(Gen<string> gen, long iterations) =>
        gen.Sample(yaml =>
        {
            try
            {
                Holds(yaml);
            }
            catch (Exception e) when (e is InvalidOperationException or TimeoutException)
            {
                Keep(yaml);
                throw;
            }
        }, iter: Iterations(iterations), threads: 1, print: y => y.Length > 2000 ? y[..2000] + $"… ({y.Length} characters)" : y);

    private static void Keep(string yaml)
    {
        var name = "found-" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(yaml)))[..16] + ".yaml";
        var folder = RepoFiles.Path(FixtureFolder);
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, name), yaml);
    }

    [Fact]
    public void Mutated_manifests_give_documents_never_exceptions_quickly() => Sample(Mutated, 120);

    [Fact]
    public void Generated_valid_manifests_are_valid_and_survive_the_round_trip_through_KV()
    {
        ValidManifest.Sample(manifest =>
        {
            var document = Assert.Single(ManifestReader.ReadText(manifest.Yaml, "v.yaml"));
            Assert.True(document.IsValid, string.Join("\n", document.ErrorLines()) + "\n" + manifest.Yaml);
            Assert.Equal(TaskJson.Canonical(manifest.Task.Spec), TaskJson.Canonical(document.Task!.Spec));
            Assert.Equal((manifest.Task.Metadata.Name, manifest.Task.Metadata.EffectiveNamespace), (document.Task.Metadata.Name, document.Task.Metadata.EffectiveNamespace));
            Holds(manifest.Yaml);
        }, iter: Iterations(100), threads: 1, print: m => m.Yaml);
    }

    public static TheoryData<string> Kept() => [.. RepoFiles.Yaml(FixtureFolder)];

    [Theory]
    [MemberData(nameof(Kept))]
    public void Every_kept_input_holds_the_properties(string fixture) => Holds(File.ReadAllText(RepoFiles.Path(fixture)));
}

/// <summary>Timed tests run alone, not beside the assembly's other test classes.</summary>
[CollectionDefinition(nameof(ManifestPropertyTests), DisableParallelization = true)]
public sealed class TimedTests;
