namespace Dtask.Executor.Tests.Support;

/// <summary>Sample runs for tests.</summary>
public static class Runs
{
    public static RunContext Backup(string? task = null, TaskNotification? notify = null) => new(
        Namespace: "ops",
        Task: task ?? "backup",
        Node: "node-a",
        Slot: 1_735_732_800,
        RunId: "ops-backup-1735732800-1",
        Command: "/usr/bin/backup --all",
        FireDelay: TimeSpan.FromMilliseconds(1234),
        Notify: notify);

    public static string UniqueTask(string prefix) => prefix + "-" + Guid.NewGuid().ToString("N")[..12];
}
