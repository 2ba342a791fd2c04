using System.Globalization;
using System.Text;

namespace CrmEngine.Edi.Tests;

/// <summary>
/// <see cref="EdiValidation"/> validates each set while the reader reads it (segments straight from the tokenizer, no
/// copy unless someone keeps them). It must give exactly what reading every set first and validating it afterwards gives:
/// the same issues in the same order (the reader's trailer issues before the content issues), counts and statuses.
/// </summary>
public class InlineValidationTests
{
    private static readonly EdiReaderOptions Limits = new() { MaxSegmentLength = 4096, MaxSegmentsPerSet = 5000, MaxElementsPerSegment = 256, BufferSize = 1024 };

    /// <summary>Every item the reader hands out with its issues: sets validated after reading (the reference) or inline.</summary>
    private static List<string> Items(byte[] input, bool inline, bool keep)
    {
        var list = new List<string>();
        var validator = new EdiValidator();
        using var reader = inline
            ? new EdiStreamReader(new MemoryStream(input), Limits) { InlineValidator = validator, KeepSegments = keep }
            : new EdiStreamReader(new MemoryStream(input), Limits);
        try
        {
            EdiItemKind kind;
            while ((kind = reader.Read()) != EdiItemKind.None)
            {
                if (kind == EdiItemKind.TransactionSet)
                {
                    var set = reader.TransactionSet!;
                    if (!inline)
                    {
                        validator.Validate(set);
                    }

                    int count = inline && !keep ? set.SegmentsRead : set.Segments.Count;
                    list.Add($"set {set.Id} {set.ControlNumber} {count} {set.DeclaredSegmentCount}");
                    list.AddRange(set.Issues.Select(QuickPathTests.Describe));
                }
                else if (kind is EdiItemKind.GroupEnd)
                {
                    list.Add($"group {reader.Group!.ControlNumber} {reader.Group.ActualCount}");
                    list.AddRange(reader.Group.Issues.Select(QuickPathTests.Describe));
                }
                else if (kind is EdiItemKind.InterchangeEnd)
                {
                    list.Add($"interchange {reader.Interchange!.ControlNumber}");
                    list.AddRange(reader.Interchange.Issues.Select(QuickPathTests.Describe));
                }
            }
        }
        catch (EdiException ex)
        {
            list.Add("error " + ex.Message);
        }

        return list;
    }

    private static int Compare(byte[] input, string what)
    {
        var reference = Items(input, inline: false, keep: true);
        foreach (bool keep in new[] { false, true })
        {
            var inline = Items(input, inline: true, keep: keep);
            Assert.True(reference.SequenceEqual(inline), $"{what} (keep {keep})\nafter reading:\n{string.Join("\n", reference)}\ninline:\n{string.Join("\n", inline)}");
        }

        return reference.Count(l => l.Contains('|', StringComparison.Ordinal));
    }

    [Fact]
    public void Samples_and_mutations_give_the_same_items_and_issues_inline()
    {
        int seed = int.TryParse(Environment.GetEnvironmentVariable("EDI_FUZZ_SEED"), CultureInfo.InvariantCulture, out var sd) ? sd : Environment.TickCount;
        int rounds = int.TryParse(Environment.GetEnvironmentVariable("EDI_QUICK_ROUNDS"), CultureInfo.InvariantCulture, out var r) ? r : 400;
        var rnd = new Random(seed);
        var seeds = FuzzTests.Seeds();
        int issues = 0;
        foreach (var s in seeds)
        {
            issues += Compare(s, "sample");
        }

        for (int i = 0; i < rounds; i++)
        {
            var input = FuzzTests.Mutate(seeds[rnd.Next(seeds.Count)], rnd);
            issues += Compare(input, $"seed {seed} round {i} input {Convert.ToBase64String(input)}");
        }

        Assert.True(issues > rounds, $"only {issues} issues compared (seed {seed})");
    }

    [Fact]
    public void Trailer_issues_come_before_content_issues_and_the_issue_limit_holds()
    {
        // 600 faulty segments (bad code value each), a wrong SE count and a wrong SE control number: the set's issues are
        // capped at 500 with the two trailer issues kept, exactly as when the set is validated after reading.
        var body = new StringBuilder();
        for (int i = 0; i < 600; i++)
        {
            body.Append("DTM*XYZ*20261201~");
        }

        string text = TestUtil.Isa(comp: ':') + "GS*PO*S*R*20261124*1200*1*X*004010~ST*850*0001~BEG*00*SA*PO-1**20261124~" + body
            + "CTT*1~SE*7*0002~GE*1*1~IEA*1*000000001~";
        var input = Encoding.ASCII.GetBytes(text);
        Assert.True(Compare(input, "capped") >= 500);

        var report = EdiValidation.Validate(new MemoryStream(input));
        var issues = report.AllIssues.ToList();
        Assert.Equal(500, issues.Count);
        Assert.Equal(EdiErrorKind.SetSegmentCountMismatch, issues[0].Kind);
        Assert.Equal(EdiErrorKind.SetControlNumberMismatch, issues[1].Kind);
        Assert.All(issues.Skip(2), i => Assert.Equal("DTM", i.SegmentTag));
        Assert.Equal(604, report.Interchanges[0].Groups[0].Sets[0].SegmentCount);
    }

    [Fact]
    public void Missing_trailer_unsupported_set_and_kept_segments()
    {
        string isa = TestUtil.Isa(comp: ':');
        string text = isa + "GS*PO*S*R*20261124*1200*1*X*004010~ST*850*0001~BEG*00*XX*PO-1**20261124~"   // SE missing, bad code
            + "ST*123*0002~ZZZ*1~SE*3*0002~"                                                                   // no definition for 123
            + "GE*2*1~IEA*1*000000001~";
        var input = Encoding.ASCII.GetBytes(text);
        Assert.True(Compare(input, "missing trailer") >= 3);

        var seen = new List<int>();
        var report = EdiValidation.Validate(new MemoryStream(input), onSet: s => seen.Add(s.Segments.Count));
        Assert.Equal([2, 3], seen);
        var kinds = report.AllIssues.Select(i => i.Kind).ToList();
        Assert.Contains(EdiErrorKind.SetTrailerMissing, kinds);
        Assert.Contains(EdiErrorKind.InvalidCodeValue, kinds);
        Assert.Contains(EdiErrorKind.SetNotSupported, kinds);
        Assert.True(kinds.IndexOf(EdiErrorKind.SetTrailerMissing) < kinds.IndexOf(EdiErrorKind.InvalidCodeValue), string.Join(", ", kinds));
    }

    [Fact]
    public void A_set_cut_off_by_the_next_interchange_or_the_segment_limit_reads_alike_inline()
    {
        // The reader's content loop hands segments straight to the validator: a new interchange (here EDIFACT after an X12
        // set without trailers, whose UNB is no envelope tag in X12) and the per-set segment limit must still reach the envelope.
        string isa = TestUtil.Isa(comp: ':');
        string x12 = isa + "GS*PO*S*R*20261124*1200*1*X*004010~ST*850*0001~BEG*00*SA*PO-1**20261124~CUR*BY*USD~";
        string edifact = "UNB+UNOC:3+S:14+R:14+261124:1200+7'UNH+1+ORDERS:D:96A:UN'BGM+220+PO-1+9'DTM+137:20261124:102'UNS+S'UNT+5+1'UNZ+1+7'";
        var cut = Items(Encoding.ASCII.GetBytes(x12 + edifact), inline: false, keep: true);
        Assert.Contains(cut, l => l.StartsWith("set ORDERS 1 ", StringComparison.Ordinal));
        Assert.Contains(cut, l => l.Contains("SetTrailerMissing", StringComparison.Ordinal));
        Assert.True(Compare(Encoding.ASCII.GetBytes(x12 + edifact), "X12 set cut off by an EDIFACT interchange") >= 1);

        var small = new EdiReaderOptions { MaxSegmentsPerSet = 3 };
        string many = isa + "GS*PO*S*R*20261124*1200*1*X*004010~ST*850*0001~BEG*00*SA*PO-1**20261124~CUR*BY*USD~DTM*002*20261201~CTT*1~SE*6*0001~GE*1*1~IEA*1*000000001~";
        var ex = Assert.Throws<EdiException>(() => EdiValidation.Validate(new MemoryStream(Encoding.ASCII.GetBytes(many)), new EdiValidationOptions { Reader = small }));
        Assert.Contains("more than 3 segments", ex.Message, StringComparison.Ordinal);
        Assert.Equal(many.IndexOf("DTM*", StringComparison.Ordinal), ex.ByteOffset); // the fourth segment of the set, not a later one
    }
}
