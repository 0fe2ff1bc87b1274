using Dtask.Core.Manifests;
using Dtask.Core.Model;

namespace Dtask.Core.Tests.Model;

public sealed class KvTaskSpecTests
{
    private static ScheduledTask Task(IReadOnlyDictionary<string, string> selector, string schedule = "0 * * * *") => new()
    {
        Metadata = new ObjectMeta { Name = "backup", Namespace = "ops", Generation = 4 },
        Spec = new ScheduledTaskSpec { Schedule = schedule, Command = ["backup"], NodeSelector = selector },
    };

    [Fact]
    public void The_envelope_round_trips_exactly()
    {
        var envelope = KvTaskSpec.From(Task(new Dictionary<string, string> { ["disk"] = "ssd" }), TaskOwner.Directory("/srv/tasks"));

        var json = envelope.ToJson();

        Assert.Equal(
            """{"namespace":"ops","name":"backup","generation":4,"specHash":"""
            + $"\"{envelope.SpecHash}\""
            + ""","owner":"dir:/srv/tasks","spec":{"schedule":"0 * * * *","command":["backup"],"nodeSelector":{"disk":"ssd"}}}""",
            json);
        Assert.Equal(json, KvTaskSpec.Parse(json).ToJson());
        Assert.Equal(TaskOwner.Directory("/srv/tasks"), KvTaskSpec.Parse(json).Owner);
    }

    [Fact]
    public void The_spec_hash_is_sha256_of_the_canonical_spec_and_ignores_map_order()
    {
        var a = KvTaskSpec.From(Task(new Dictionary<string, string> { ["disk"] = "ssd", ["zone"] = "b" }), TaskOwner.Kubernetes);
        var b = KvTaskSpec.From(Task(new Dictionary<string, string> { ["zone"] = "b", ["disk"] = "ssd" }), TaskOwner.Kubernetes);
        var c = KvTaskSpec.From(Task(new Dictionary<string, string> { ["disk"] = "ssd", ["zone"] = "b" }, "5 * * * *"), TaskOwner.Kubernetes);

        Assert.Matches("^sha256:[0-9a-f]{64}$", a.SpecHash);
        Assert.Equal(a.SpecHash, b.SpecHash);
        Assert.NotEqual(a.SpecHash, c.SpecHash);
        Assert.Equal(
            """{"command":["backup"],"nodeSelector":{"disk":"ssd","zone":"b"},"schedule":"0 * * * *"}""",
            TaskJson.Canonical(b.Spec));
    }

    [Fact]
    public void A_write_that_resumes_the_task_stamps_the_resume_and_later_writes_carry_it()
    {
        var now = new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);
        var running = KvTaskSpec.From(Task(new Dictionary<string, string>()), TaskOwner.Cli);
        var suspended = running with { Spec = running.Spec with { Suspend = true } };

        var suspending = suspended.Over(running, now);
        var resuming = running.Over(suspending, now);
        var edited = (running with { Spec = running.Spec with { Schedule = "5 * * * *" } }).Over(resuming, now.AddHours(1));
        var suspendedAgain = suspended.Over(edited, now.AddHours(2));

        Assert.Null(running.Over(null, now).ResumedAt);
        Assert.Null(suspending.ResumedAt);
        Assert.Equal(now, resuming.ResumedAt);
        Assert.Equal(now, edited.ResumedAt);
        Assert.Equal(now, suspendedAgain.ResumedAt);
        Assert.Equal(now.AddHours(3), running.Over(suspendedAgain, now.AddHours(3)).ResumedAt);
        Assert.Equal(resuming.ToJson(), KvTaskSpec.Parse(resuming.ToJson()).ToJson());
        Assert.Contains("\"resumedAt\":\"2026-03-01T12:00:00Z\"", resuming.ToJson(), StringComparison.Ordinal);
        Assert.DoesNotContain("resumedAt", running.ToJson(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("dtask/", "ops", "backup", "dtask/tasks/ops/backup")]
    [InlineData("dtask", "ops", "backup", "dtask/tasks/ops/backup")]
    [InlineData("team/dtask/", "default", "x", "team/dtask/tasks/default/x")]
    public void The_key_lives_under_the_prefix(string prefix, string ns, string name, string expected) =>
        Assert.Equal(expected, KvTaskSpec.KeyFor(prefix, ns, name));

    [Theory]
    [InlineData("kubernetes")]
    [InlineData("cli")]
    [InlineData("dir:/srv/gitops/tasks")]
    public void Owners_read_back_what_they_write(string text)
    {
        Assert.True(TaskOwner.TryParse(text, out var owner));
        Assert.Equal(text, owner.ToString());
    }

    [Theory]
    [InlineData("")]
    [InlineData("dir:")]
    [InlineData("Kubernetes")]
    public void Unknown_owners_are_refused(string text) => Assert.False(TaskOwner.TryParse(text, out _));
}
