using System.Text.Json.Serialization;

namespace Dtask.Core.Model;

/// <summary>A moment in a run's life that can send a notification (<c>spec.notify.slack.on</c>).</summary>
public enum NotifyEvent
{
    /// <summary>A run started.</summary>
    [JsonStringEnumMemberName("start")]
    Start,

    /// <summary>A run finished with exit code 0.</summary>
    [JsonStringEnumMemberName("success")]
    Success,

    /// <summary>A run failed: non-zero exit code, timeout, or the command could not start.</summary>
    [JsonStringEnumMemberName("failure")]
    Failure,

    /// <summary>A slot was not fired in time and was recorded as missed.</summary>
    [JsonStringEnumMemberName("missed")]
    Missed,

    /// <summary>The executor lost the task's lock while the child ran; the child was stopped.</summary>
    [JsonStringEnumMemberName("lost")]
    Lost,
}
