using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Executor.Claims;
using Dtask.Executor.Tests.Support;

namespace Dtask.Executor.Tests.Claims;

public sealed class RunRecordBatchReaderTests(ConsulFixture consul)
{
    [Fact]
    public async Task Many_reads_asked_together_are_answered_by_a_few_transactions_with_the_stored_records()
    {
        await using var world = new ClaimWorld(consul);
        var ct = TestContext.Current.CancellationToken;
        var tasks = Enumerable.Range(0, 200).Select(i => new TaskId("ops", $"many-{i}")).ToList();
        foreach (var task in tasks.Where((_, i) => i % 3 == 0))
        {
            var record = new RunRecord { Slot = 1_900_000_000, RunId = "r-" + task.Name, Node = "node-a", State = RunState.Succeeded };
            Assert.True((await world.Client.Kv.PutAsync(world.Layout.RunKey(task.Namespace, task.Name), RunStateStore.Encode(record), cancellationToken: ct)).Value);
            // A history entry beside it is never read.
            await world.Client.Kv.PutAsync(world.Layout.HistoryKey(task.Namespace, task.Name, 1_900_000_000), RunStateStore.Encode(record), cancellationToken: ct);
        }

        await using var reader = new RunRecordBatchReader(world.Store);
        var before = world.Client.Requests.Snapshot();
        var answers = await Task.WhenAll(tasks.Select(t => reader.ReadAsync(t, ct)));
        var used = world.Client.Requests.Snapshot().Since(before);

        for (var i = 0; i < tasks.Count; i++)
        {
            if (i % 3 == 0)
            {
                Assert.Equal("r-" + tasks[i].Name, answers[i].Record!.RunId);
                Assert.NotEqual(0UL, answers[i].ModifyIndex);
            }
            else
            {
                Assert.Equal(new StoredRun(null, 0), answers[i]);
            }
        }

        Assert.InRange(used.Requests, 4, 20); // 200 reads in batches of at most 64.
    }
}
