using Dtask.Consul.Kv;
using Dtask.Executor.Daemon;

namespace Dtask.Executor.Tests.Daemon;

public sealed class ListingChangeTests
{
    private static KvPair Pair(string key, ulong index) => new(key, ReadOnlyMemory<byte>.Empty, 0, index, index, 0, null);

    [Fact]
    public void The_same_listing_again_is_not_new_but_a_write_a_creation_or_a_deletion_is()
    {
        var change = new ListingChange();
        Assert.True(change.IsNew([]));
        Assert.False(change.IsNew([]));
        Assert.True(change.IsNew([Pair("control/.watch", 10)]));
        Assert.False(change.IsNew([Pair("control/.watch", 10)]));
        Assert.True(change.IsNew([Pair("control/.watch", 10), Pair("control/ops/a", 12)]));
        Assert.True(change.IsNew([Pair("control/.watch", 10), Pair("control/ops/a", 13)]));
        Assert.True(change.IsNew([Pair("control/.watch", 10)]));
    }
}
