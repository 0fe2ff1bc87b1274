using System.Text.Json.Serialization;

namespace Dtask.Core.State;

/// <summary>
/// A request to the executors about one task: a manual run (<c>dtask trigger</c>) at
/// <c>control/&lt;ns&gt;/&lt;name&gt;/trigger/&lt;id&gt;</c>, or a request to stop one run so a new one can start
/// (<c>Replace</c>) at <c>control/&lt;ns&gt;/&lt;name&gt;/stop/&lt;runId&gt;</c>. Each request has its own key, written
/// with CAS 0, so no request overwrites another. The key decides; the value is informational.
/// </summary>
public sealed record ControlRequest
{
    /// <summary>What is asked.</summary>
    public required ControlAction Action { get; init; }

    /// <summary>A unique id, so a request is acted on once.</summary>
    public required string Id { get; init; }

    /// <summary>When it was asked, by the requester's clock: shown to people, never used to schedule anything.</summary>
    public required DateTimeOffset RequestedAt { get; init; }

    /// <summary>Who asked (a node name, or <c>cli</c>).</summary>
    public string? RequestedBy { get; init; }

    /// <summary>For <see cref="ControlAction.Stop"/>: the run to stop, by its run id.</summary>
    public string? RunId { get; init; }
}

/// <summary>The actions of a <see cref="ControlRequest"/>.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<ControlAction>))]
public enum ControlAction
{
    /// <summary>Run the task once now, outside the schedule; claimed so it runs exactly once.</summary>
    [JsonStringEnumMemberName("trigger")]
    Trigger,

    /// <summary>Stop the running child of the given run.</summary>
    [JsonStringEnumMemberName("stop")]
    Stop,
}
