namespace CrmEngine.Edi.Tests;

public class CharacterSetTests
{
    [Fact]
    public void Interchange_saved_as_two_octet_ucs2_big_endian_is_detected_transcoded_and_validated()
    {
        string path = TestUtil.SamplePath("edifact-orders-ucs2be-tolerated.edi");
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
    public void Unow_means_utf8_octets_and_round_trips_non_latin_names()
    {
        // Code list 0001: UNOW = ISO 10646-1 octet with code extension technique to support UTF-8.
        string name = "Ωmega Trading 株式会社 Söhne";
        string text = $"UNB+UNOW:3+S+R+261124:1200+12'UNH+1+ORDERS:D:96A:UN'BGM+220+PO-1+9'DTM+137:20261124:102'NAD+BY+++{name}'LIN+1++4000862111206:EN'QTY+21:1:PCE'UNS+S'UNT+8+1'UNZ+1+12'";
        var report = EdiValidation.Validate(TestUtil.Stream(text), onSet: set => Assert.Equal(name, EdiDocuments.FromSet(set)!.Parties.Single().Name));
        Assert.Equal("", string.Join("\n", report.AllIssues));
        Assert.Equal(1, report.SetCount);

        using var reader = new EdiStreamReader(TestUtil.Stream(text));
        reader.Read();
        Assert.Equal("utf-8", reader.Interchange!.Encoding.WebName);
        Assert.Null(reader.Tokenizer.InputTranscodedFrom);
    }

    [Fact]
    public void Ucs2_input_is_read_as_utf8_whatever_character_set_the_header_declares()
    {
        // After transcoding the bytes are UTF-8: a UNOC header must not make the reader decode them as ISO 8859-1.
        var text = "UNB+UNOC:3+S+R+261124:1200+9'UNH+1+ORDERS:D:96A:UN'BGM+220+PO-1+9'DTM+137:20261124:102'NAD+BY+++Müller Söhne'LIN+1++4000862111206:EN'QTY+21:1:PCE'UNS+S'UNT+8+1'UNZ+1+9'";
        var bytes = new byte[] { 0xFE, 0xFF }.Concat(System.Text.Encoding.BigEndianUnicode.GetBytes(text)).ToArray();
        using var reader = new EdiStreamReader(new MemoryStream(bytes));
        while (reader.Read() is var kind && kind != EdiItemKind.TransactionSet)
        {
            Assert.NotEqual(EdiItemKind.None, kind);
        }

        Assert.Equal("UCS-2BE", reader.Tokenizer.InputTranscodedFrom);
        Assert.Equal("Müller Söhne", reader.TransactionSet!.Segments[3].Get(4));
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
