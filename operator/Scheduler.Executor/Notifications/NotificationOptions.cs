using Dtask.Executor.Notifications.DataDog;
using Dtask.Executor.Notifications.Slack;

namespace Dtask.Executor.Notifications;

/// <summary>All notification settings of an executor. Its <see cref="object.ToString"/> shows no secret.</summary>
/// <param name="Slack">Slack settings.</param>
/// <param name="DataDog">DataDog settings.</param>
public sealed record NotificationOptions(SlackOptions Slack, DataDogOptions DataDog)
{
    /// <summary>Reads both from the environment (see <see cref="SlackOptions.FromEnvironment"/> and <see cref="DataDogOptions.FromEnvironment"/>).</summary>
    /// <param name="settings">The environment.</param>
    /// <returns>The options.</returns>
    public static NotificationOptions FromEnvironment(EnvironmentSettings settings) =>
        new(SlackOptions.FromEnvironment(settings), DataDogOptions.FromEnvironment(settings));
}
