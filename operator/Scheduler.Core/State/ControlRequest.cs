using System.Text.Json.Serialization;

namespace Dtask.Core.State;

/// <summary>
/// A request to the executors about one task, at <c>control/&lt;ns&gt;/&lt;name&gt;</c>: a manual run
/// (<c>dtask trigger</c>), or a request to stop the running child so a new slot can run (<c>Replace</c>).
/// </summary>
public sealed record ControlRequest
{
    /// <summary>What is asked.</summary>
    public required ControlAction Action { get; init; }

    /// <summary>A unique id, so a request is acted on once.</summary>
    public required string Id { get; init; }

    /// <summary>When it was asked.</summary>
    public required DateTimeOffset RequestedAt { get; init; }

    /// <summary>Who asked (a node name, or <c>cli</c>).</summary>
    public string? RequestedBy { get; init; }

    /// <summary>For <see cref="ControlAction.Stop"/>: the run to stop, by its run id.</summary>
    public string? RunId { get; init; }

    /// <summary>For <see cref="ControlAction.Trigger"/>: the slot id the manual run takes (the request time in Unix seconds).</summary>
    public long? Slot { get; init; }
}

/// <summary>The actions of a <see cref="ControlRequest"/>.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<ControlAction>))]
public enum ControlAction
{
    /// <summary>Run the task once now, claimed like a slot so it runs exactly once.</summary>
    [JsonStringEnumMemberName("trigger")]
    Trigger,

    /// <summary>Stop the running child of the given run.</summary>
    [JsonStringEnumMemberName("stop")]
    Stop,
}
