namespace Dtask.Chaos.Checking;

/// <summary>
/// The invariants the chaos checker judges, each with its own counter in the report. A <see cref="Violation"/>'s kind
/// names the evidence that broke one of them.
/// </summary>
public static class Invariants
{
    /// <summary>(a) No slot started twice: two witnessed starts of one (task, slot) are two starts, whatever their run ids, unless they are retries within the task's limit; no trigger request started twice.</summary>
    public const string SlotOnce = "a-no-slot-started-twice";

    /// <summary>(b) No two children of one task alive at once (Replace hands over only after the old child's end); fences increase.</summary>
    public const string OneChild = "b-one-child-at-a-time";

    /// <summary>(c) Every due slot accounted for: run, or recorded skipped/missed/lost/abandoned with a reason; every trigger request run, dropped with a reason, or still pending.</summary>
    public const string Accounted = "c-every-slot-accounted";

    /// <summary>(d) Every record true against the witness.</summary>
    public const string RecordsTrue = "d-every-record-true";

    /// <summary>(e) No task stalls: after every fault heals, each task runs within one period plus the session TTL (and an allowance).</summary>
    public const string NoStall = "e-no-stall";

    /// <summary>(f) No child outlives its executor by more than the termination grace (and an allowance).</summary>
    public const string ChildrenDie = "f-children-die-with-executor";

    /// <summary>(g) No fire before its slot instant, by the host's true wall clock (the child's own, corrected for the injected offset).</summary>
    public const string NotEarly = "g-no-early-fire";

    /// <summary>Every invariant, in order.</summary>
    public static IReadOnlyList<string> All { get; } = [SlotOnce, OneChild, Accounted, RecordsTrue, NoStall, ChildrenDie, NotEarly];

    /// <summary>The invariant a violation of <paramref name="kind"/> breaks.</summary>
    public static string Of(string kind) => kind switch
    {
        "duplicate" or "claim-without-quorum" => SlotOnce,
        "overlap" or "fence-order" => OneChild,
        "unexplained-slot" or "no-runs" or "unexplained-trigger" => Accounted,
        "record-contradicts-witness" or "run-without-record" or "record-without-witness" or "running-without-child" or "wrong-host" => RecordsTrue,
        "stall" or "majority-stalled" => NoStall,
        "child-outlived-executor" => ChildrenDie,
        "early-fire" or "premature-marker" => NotEarly,
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "not a violation kind"),
    };
}
