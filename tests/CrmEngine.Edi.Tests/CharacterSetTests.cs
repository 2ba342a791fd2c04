namespace CrmEngine.Edi.Tests;

public class CharacterSetTests
{
    [Fact]
    public void Unow_interchange_in_ucs2_big_endian_is_read_and_validated()
    {
        string path = TestUtil.SamplePath("edifact-orders-unow-ucs2be.edi");
        using (var reader = EdiStreamReader.Open(path))
        {
            Assert.Equal(EdiItemKind.InterchangeStart, reader.Read());
            Assert.Equal("UNOW", reader.Interchange!.CharacterSet);
            Assert.Equal("UCS-2BE", reader.Tokenizer.InputTranscodedFrom);
            Assert.Equal(EdiItemKind.GroupStart, reader.Read());
            Assert.Equal(EdiItemKind.TransactionSet, reader.Read());
            var set = reader.TransactionSet!;
            Assert.Equal("PO-ΩМ-77", set.Segments[1].Get(2));
            Assert.Equal("Ωmega Trading 株式会社 + Söhne", set.Segments[3].Get(4, 1));
            var doc = EdiDocuments.FromSet(set)!;
            Assert.Equal("Ωmega Trading 株式会社 + Söhne", doc.Parties.Single().Name);
        }

        var report = EdiValidation.ValidateFile(path);
        Assert.Equal("", string.Join("\n", report.AllIssues));
        Assert.Equal(1, report.SetCount);
    }

    [Fact]
    public void Ucs2_little_endian_with_byte_order_mark_is_read()
    {
        var text = "UNB+UNOW:3+S+R+261124:1200+9'UNZ+0+9'";
        var bytes = new byte[] { 0xFF, 0xFE }.Concat(System.Text.Encoding.Unicode.GetBytes(text)).ToArray();
        using var reader = new EdiStreamReader(new MemoryStream(bytes));
        Assert.Equal(EdiItemKind.InterchangeStart, reader.Read());
        Assert.Equal("9", reader.Interchange!.ControlNumber);
        Assert.Equal("UCS-2LE", reader.Tokenizer.InputTranscodedFrom);
        Assert.Equal(EdiItemKind.InterchangeEnd, reader.Read());
    }

    [Fact]
    public void X12_basic_character_set_reports_characters_outside_it_with_position_and_code_6()
    {
        string text = TestUtil.Isa(control: "000000009") + "GS*PO*BUYER*SELLER*20261124*1200*9*X*004010~ST*850*0001~BEG*00*SA*po-1**20261124~N1*BY*ACME RETAIL*92*0042~PO1*1*1*EA*1**VP*A@1~CTT*1~SE*6*0001~GE*1*9~IEA*1*000000009~";
        Assert.Empty(EdiValidation.Validate(TestUtil.Stream(text)).AllIssues);

        var report = EdiValidation.Validate(TestUtil.Stream(text), new EdiValidationOptions { X12BasicCharacterSet = true });
        var issues = report.AllIssues.ToList();
        Assert.Equal(2, issues.Count);
        Assert.All(issues, i => Assert.Equal((EdiErrorKind.InvalidCharacter, "6"), (i.Kind, i.Code)));
        Assert.Equal(("BEG", 2, 3, "po-1"), (issues[0].SegmentTag, issues[0].SegmentPosition, issues[0].ElementPosition, issues[0].BadValue));
        Assert.Contains("contains 'p' (character 1), outside the X12 basic character set", issues[0].Message, StringComparison.Ordinal);
        Assert.Equal(("PO1", 4, 7), (issues[1].SegmentTag, issues[1].SegmentPosition, issues[1].ElementPosition));
        string ack = EdiAcknowledgements.WriteToString(report);
        Assert.Contains("AK4*3*324*6*po-1~", ack, StringComparison.Ordinal);
    }
}
