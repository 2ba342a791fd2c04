namespace CrmEngine.Edi.Tests;

public class EnvelopeTests
{
    [Fact]
    public void X12_interchange_with_810_and_850_groups_yields_all_sets()
    {
        using var s = File.OpenRead(TestUtil.SamplePath("x12-005010-810-and-850-groups.edi"));
        var items = TestUtil.ReadAll(s);
        var sets = items.Where(i => i.Kind == EdiItemKind.TransactionSet).Select(i => i.Text).ToList();
        Assert.Equal(["810/1001/16", "850/0001/6", "850/0002/7"], sets);
        Assert.Equal(2, items.Count(i => i.Kind == EdiItemKind.GroupStart));
    }

    [Fact]
    public void Edifact_latin1_names_are_decoded_under_unoc()
    {
        using var r = new EdiStreamReader(File.OpenRead(TestUtil.SamplePath("edifact-orders-d96a-unoc-latin1.edi")));
        Assert.Equal(EdiItemKind.InterchangeStart, r.Read());
        Assert.Equal(EdiItemKind.GroupStart, r.Read());
        Assert.Equal(EdiItemKind.TransactionSet, r.Read());
        var set = r.TransactionSet!;
        Assert.Equal("ORDERS", set.Id);
        Assert.Equal("D96A", set.Version);
        Assert.Empty(set.Issues);
        var nad = Enumerable.Range(0, set.Segments.Count).Select(i => set.Segments[i]).First(x => x.Tag == "NAD");
        Assert.Equal("Société Générale d'Épicerie", nad.Get(4));
        var ftx = Enumerable.Range(0, set.Segments.Count).Select(i => set.Segments[i]).First(x => x.Tag == "FTX");
        Assert.Equal("Livraison : porte 3'quai B", ftx.Get(4));
    }

    [Fact]
    public void Wrong_counts_and_control_numbers_are_reported_with_codes()
    {
        string text = TestUtil.Isa("000000007") + "GS*PO*S*R*20261124*1200*5*X*004010~ST*850*0001~BEG*00*SA*1**20261124~SE*9*0002~ST*850*0001~SE*2*0001~GE*3*6~IEA*2*000000008~";
        using var r = new EdiStreamReader(TestUtil.Stream(text));
        var issues = new List<EdiIssue>();
        while (r.Read() is var k && k != EdiItemKind.None)
        {
            if (k == EdiItemKind.TransactionSet)
            {
                issues.AddRange(r.TransactionSet!.Issues);
            }
            else if (k == EdiItemKind.GroupEnd)
            {
                issues.AddRange(r.Group!.Issues);
            }
            else if (k == EdiItemKind.InterchangeEnd)
            {
                issues.AddRange(r.Interchange!.Issues);
            }
        }

        var kinds = issues.Select(i => (i.Kind, i.Code)).ToList();
        Assert.Contains((EdiErrorKind.SetSegmentCountMismatch, "4"), kinds);
        Assert.Contains((EdiErrorKind.SetControlNumberMismatch, "3"), kinds);
        Assert.Contains((EdiErrorKind.DuplicateSet, "23"), kinds);
        Assert.Contains((EdiErrorKind.GroupSetCountMismatch, "5"), kinds);
        Assert.Contains((EdiErrorKind.GroupControlNumberMismatch, "4"), kinds);
        Assert.Contains((EdiErrorKind.InterchangeGroupCountMismatch, "021"), kinds);
        Assert.Contains((EdiErrorKind.InterchangeControlNumberMismatch, "001"), kinds);
        var count = issues.First(i => i.Kind == EdiErrorKind.SetSegmentCountMismatch);
        Assert.Equal("000000007", count.InterchangeControlNumber);
        Assert.Equal("5", count.GroupControlNumber);
        Assert.Equal("0001", count.SetControlNumber);
        Assert.Equal("SE", count.SegmentTag);
        Assert.Equal(3, count.SegmentPosition);
    }

    [Fact]
    public void Missing_trailer_closes_the_set_and_is_reported()
    {
        string text = "UNB+UNOA:3+S+R+261124:1200+1'UNH+1+ORDERS:D:96A:UN'BGM+220+A'UNH+2+ORDERS:D:96A:UN'BGM+220+B'UNT+3+2'UNZ+2+1'";
        using var r = new EdiStreamReader(TestUtil.Stream(text));
        var sets = new List<(string, List<EdiIssue>)>();
        while (r.Read() is var k && k != EdiItemKind.None)
        {
            if (k == EdiItemKind.TransactionSet)
            {
                sets.Add((r.TransactionSet!.ControlNumber, r.TransactionSet.Issues));
            }
        }

        Assert.Equal(2, sets.Count);
        Assert.Equal(EdiErrorKind.SetTrailerMissing, Assert.Single(sets[0].Item2).Kind);
        Assert.Empty(sets[1].Item2);
    }

    [Fact]
    public void End_of_input_inside_an_interchange_is_a_truncation_error()
    {
        string text = TestUtil.Isa() + "GS*PO*S*R*20261124*1200*5*X*004010~ST*850*0001~";
        var ex = Assert.Throws<EdiException>(() => TestUtil.ReadAll(TestUtil.Stream(text)));
        Assert.Contains("truncated input", ex.Message, StringComparison.Ordinal);
        Assert.Contains("IEA", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Duplicate_interchange_control_numbers_in_one_file_are_reported()
    {
        string one = TestUtil.Isa("000000042") + "IEA*0*000000042~\n";
        using var r = new EdiStreamReader(TestUtil.Stream(one + one));
        var issues = new List<EdiIssue>();
        while (r.Read() is var k && k != EdiItemKind.None)
        {
            if (k == EdiItemKind.InterchangeEnd)
            {
                issues.AddRange(r.Interchange!.Issues);
            }
        }

        Assert.Equal("025", Assert.Single(issues).Code);
    }
}

public class MissingTrailerTests
{
    [Fact]
    public void A_new_interchange_without_the_previous_trailer_uses_its_own_delimiters()
    {
        string first = TestUtil.Isa("000000001") + "GS*PO*S*R*20261124*1200*1*X*004010~ST*850*0001~BEG*00*SA*PO-1**20261124~PO1*1*1*EA*1**VP*A~SE*4*0001~GE*1*1~";
        string second = TestUtil.Isa("000000002", elem: '|', comp: '>', term: '\n') + "GS|PO|S|R|20261124|1200|2|X|004010\nST|850|0001\nBEG|00|SA|PO-2||20261124\nPO1|1|1|EA|1||VP|A\nSE|4|0001\nGE|1|2\nIEA|1|000000002\n";
        string third = "UNB+UNOA:3+S+R+261124:1200+3'UNH+1+ORDERS:D:96A:UN'BGM+220+PO-3+9'DTM+137:20261124:102'UNS+S'UNT+5+1'UNZ+1+3'";
        var report = EdiValidation.Validate(TestUtil.Stream(first + second + third));
        Assert.Equal(3, report.Interchanges.Count);
        Assert.Equal(EdiErrorKind.InterchangeTrailerMissing, Assert.Single(report.AllIssues).Kind);
        Assert.Equal(["PO-1", "PO-2", "PO-3"], EdiDocuments.ReadAll(TestUtil.Stream(first + second + third)).Select(d => d.Number));
    }
}
