namespace Dtask.Core.Validation;

/// <summary>
/// Bounds on what a task may hold. The CRD and the validator use the same numbers. They keep a spec small
/// (well under Consul's 512 KiB value limit) and make a typo fail loudly instead of filling KV.
/// </summary>
public static class ValidationLimits
{
    /// <summary>Names and namespaces are DNS-1123 labels: at most 63 characters.</summary>
    public const int MaxNameLength = 63;

    /// <summary>Longest cron expression.</summary>
    public const int MaxScheduleLength = 256;

    /// <summary>Longest time zone id.</summary>
    public const int MaxTimeZoneLength = 64;

    /// <summary>Longest duration string.</summary>
    public const int MaxDurationLength = 64;

    /// <summary>Shortest <c>every</c> period.</summary>
    public static readonly TimeSpan MinEvery = TimeSpan.FromSeconds(1);

    /// <summary>Most argv entries of <c>command</c>.</summary>
    public const int MaxCommandArgs = 256;

    /// <summary>Longest single argv entry.</summary>
    public const int MaxArgLength = 4096;

    /// <summary>Longest <c>shell</c> script.</summary>
    public const int MaxShellLength = 16 * 1024;

    /// <summary>Most <c>env</c> entries.</summary>
    public const int MaxEnvVars = 128;

    /// <summary>Longest environment variable name.</summary>
    public const int MaxEnvNameLength = 256;

    /// <summary>Longest environment variable value.</summary>
    public const int MaxEnvValueLength = 8 * 1024;

    /// <summary>Longest <c>workingDir</c>.</summary>
    public const int MaxWorkingDirLength = 4096;

    /// <summary>Most <c>nodeSelector</c> entries.</summary>
    public const int MaxNodeSelector = 32;

    /// <summary>Largest <c>history</c>.</summary>
    public const int MaxHistory = 1000;

    /// <summary>Largest <c>retries.limit</c>.</summary>
    public const int MaxRetries = 100;

    /// <summary>Most DataDog tags.</summary>
    public const int MaxTags = 32;

    /// <summary>Longest DataDog tag (DataDog's own limit).</summary>
    public const int MaxTagLength = 200;

    /// <summary>Longest Slack channel name.</summary>
    public const int MaxChannelLength = 80;

    /// <summary>Largest spec as JSON, in bytes: 64 KiB, an eighth of Consul's value limit.</summary>
    public const int MaxSpecJsonBytes = 64 * 1024;

    /// <summary>Prefix of the variables the executor hands the child; a task cannot set them.</summary>
    public const string ReservedEnvPrefix = "DTASK_";
}
