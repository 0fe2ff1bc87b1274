using System.Globalization;

namespace Dtask.Executor.Claims;

/// <summary>
/// The fence token of a claim: the run record's ModifyIndex written by the claim transaction. Consul's indexes only
/// grow, so each claim of a task has a larger fence than every claim before it; a system the child writes to can
/// refuse a writer whose fence is older than one it has already seen. Handed to the child as <c>DTASK_FENCE</c>.
/// </summary>
/// <param name="Value">The index.</param>
public readonly record struct FenceToken(ulong Value)
{
    /// <summary>The index as a signed number, as stored in <see cref="Core.State.RunRecord.Fence"/>.</summary>
    public long AsLong => checked((long)Value);

    /// <inheritdoc />
    public override string ToString() => Value.ToString(CultureInfo.InvariantCulture);
}
