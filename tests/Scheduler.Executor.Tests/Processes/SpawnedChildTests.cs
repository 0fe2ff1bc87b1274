using System.ComponentModel;
using System.Globalization;
using Dtask.Executor.Processes;

namespace Dtask.Executor.Tests.Processes;

public sealed class SpawnedChildTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public void Children_are_spawned_with_one_exec_in_a_process_that_reaps_only_its_own()
    {
        // The test host is not pid 1 and does not ignore SIGCHLD: the runtime reaps only Process's children here.
        Assert.True(ChildProcessGroup.CanSpawn);
        Assert.Equal(ChildStartMethod.PosixSpawn, ChildProcessGroup.AutoMethod);
    }

    [Fact]
    public async Task A_spawned_child_leads_its_session_in_its_directory_with_exactly_its_environment()
    {
        var dir = Directory.CreateTempSubdirectory("dtask-spawn-").FullName;
        try
        {
            var environment = new Dictionary<string, string?> { ["PATH"] = "/usr/bin:/bin", ["WITNESS"] = "w", ["NOTHING"] = null };
            using var child = SpawnedChild.Start("/bin/bash",
                ["bash", "-c", "read -ra f < /proc/$$/stat; printf \"$WITNESS $$ ${f[4]} ${f[5]} $(pwd) $(env | grep -c .)\"; printf e >&2; exit 3"],
                environment, dir);

            using var stdout = new StreamReader(child.StandardOutput);
            using var stderr = new StreamReader(child.StandardError);
            var output = (await stdout.ReadToEndAsync(Ct)).Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var error = await stderr.ReadToEndAsync(Ct);

            Assert.Equal(3, await child.Exited.WaitAsync(Ct));
            var pid = child.ProcessId.ToString(CultureInfo.InvariantCulture);
            Assert.Equal(["w", pid, pid, pid, dir], output[..5]); // Its own pid, group, session, and the directory asked for.
            // PATH, WITNESS and what bash itself sets (PWD, SHLVL, _): nothing of the test host's environment.
            Assert.True(int.Parse(output[5], CultureInfo.InvariantCulture) <= 5, $"{output[5]} variables");
            Assert.Equal("e", error);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task A_signal_that_ends_a_spawned_child_is_its_exit_code_as_a_shell_says_and_stdin_is_at_end_of_file()
    {
        using var killed = SpawnedChild.Start("/bin/sh", ["sh", "-c", "kill -KILL $$"], [], null);
        Assert.Equal(137, await killed.Exited.WaitAsync(Ct));

        using var reader = SpawnedChild.Start("/bin/sh", ["sh", "-c", "cat; echo end"], [], null);
        using var stdout = new StreamReader(reader.StandardOutput);
        Assert.Equal("end\n", await stdout.ReadToEndAsync(Ct));
        Assert.Equal(0, await reader.Exited.WaitAsync(Ct));
    }

    [Fact]
    public void A_program_that_cannot_be_executed_is_an_error_at_the_start()
    {
        var error = Assert.Throws<Win32Exception>(() => SpawnedChild.Start("/nonexistent/dtask-program", ["x"], [], null));
        Assert.Equal(2, error.NativeErrorCode); // ENOENT, from the exec itself
        var noDir = Assert.Throws<Win32Exception>(() => SpawnedChild.Start("/bin/true", ["true"], [], "/nonexistent/dtask-dir"));
        Assert.Equal(2, noDir.NativeErrorCode);
    }
}
