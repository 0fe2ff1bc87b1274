using System.Globalization;
using Dtask.Chaos.Evidence;
using Dtask.Testing;

namespace Dtask.Chaos.Fleet;

/// <summary>
/// Children that outlived their executor (orphaned by a SIGKILL) and still run when the chaos run ends. They are
/// found from the witness log (a start line without an end line) and recognised by their environment, which holds
/// their <c>DTASK_RUN_ID</c>, so an unrelated process that reuses a pid is never touched.
/// </summary>
public static class LeftoverChildren
{
    /// <summary>Kills the process group of every such child; returns how many were still running.</summary>
    public static int Kill(IEnumerable<WitnessRun> runs)
    {
        ArgumentNullException.ThrowIfNull(runs);
        var killed = 0;
        foreach (var run in runs.Where(r => r.End is null))
        {
            var environ = $"/proc/{run.Pid.ToString(CultureInfo.InvariantCulture)}/environ";
            string content;
            try
            {
                content = File.ReadAllText(environ);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                continue; // Gone.
            }

            if (content.Split('\0').Contains("DTASK_RUN_ID=" + run.RunId) && ProcessSignal.SendToGroup(run.Pid, ProcessSignal.Kill))
            {
                killed++;
            }
        }

        return killed;
    }
}
