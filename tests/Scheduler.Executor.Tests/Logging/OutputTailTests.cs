using System.Text;
using Dtask.Executor.Logging;

namespace Dtask.Executor.Tests.Logging;

public class OutputTailTests
{
    public static TheoryData<string, int[], string> Appends => new()
    {
        { "fits, kept whole", [3, 2], "abcde" },
        { "wraps once, keeps the newest", [6, 4], "efghij" },
        { "one append larger than the ring", [20], "opqrst" },
        { "many small appends", [1, 1, 1, 1, 1, 1, 1, 1], "cdefgh" },
    };

    [Theory]
    [MemberData(nameof(Appends))]
    public void Keeps_the_last_bytes(string name, int[] sizes, string expected)
    {
        _ = name;
        var tail = new OutputTail(capacity: 6);
        var next = 'a';
        foreach (var size in sizes)
        {
            var chunk = new string(Enumerable.Range(0, size).Select(_ => next++).ToArray());
            tail.Append(Encoding.ASCII.GetBytes(chunk));
        }

        Assert.Equal(expected, tail.ToString());
        Assert.Equal(sizes.Sum(), tail.TotalBytes);
        Assert.Equal(sizes.Sum() > 6, tail.Truncated);
    }

    [Theory]
    [InlineData("aé€😀", 5)]
    [InlineData("😀😀😀", 6)]
    [InlineData("ééééé", 5)]
    [InlineData("x€€€", 7)]
    public void Never_starts_inside_a_character(string text, int capacity)
    {
        var tail = new OutputTail(capacity);
        tail.Append(Encoding.UTF8.GetBytes(text));

        var kept = tail.ToString();
        Assert.DoesNotContain('\uFFFD', kept);
        Assert.EndsWith(kept, text, StringComparison.Ordinal);
        Assert.True(Encoding.UTF8.GetByteCount(kept) > capacity - 4);
    }

    [Fact]
    public void Four_kib_by_default()
    {
        var tail = new OutputTail();
        tail.Append(Encoding.ASCII.GetBytes(new string('a', 5000) + "END"));

        Assert.Equal(4096, tail.ToArray().Length);
        Assert.EndsWith("END", tail.ToString(), StringComparison.Ordinal);
    }
}
