namespace CrmEngine.Edi.Tests;

public class AckTests
{
    private sealed class FixedTime : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => new(2026, 11, 24, 13, 5, 0, TimeSpan.Zero);
    }

    private const string Gs = "GS*PO*BUYER*SELLER*20261124*1200*77*X*004010~";
    private const string Good = "ST*850*0001~BEG*00*SA*PO-1**20261124~PO1*1*1*EA*1**VP*A~SE*4*0001~";
    private const string Bad = "ST*850*0002~CUR*BY*USD~SE*3*0002~";
    private const string Soft = "ST*850*0003~BEG*00*XX*PO-3**20261124~PO1*1*1*EA*1**VP*A~SE*4*0003~";

    private static (EdiValidationReport Report, string Ack) Ack(string text, EdiAckType? type = null)
    {
        var report = EdiValidation.Validate(TestUtil.Stream(text));
        return (report, EdiAcknowledgements.WriteToString(report, type, new EdiControlNumberSequence(500, 600, 1), new FixedTime()));
    }

    [Fact]
    public void Ack_997_lists_each_set_with_ak3_ak4_and_ak9_counts()
    {
        var (_, ack) = Ack(TestUtil.Isa() + Gs + Good + Bad + Soft + "GE*3*77~IEA*1*000000001~");
        Assert.StartsWith("ISA*00*          *00*          *ZZ*RECEIVER       *ZZ*SENDER         *261124*1305*U*00401*000000500*0*P*>~", ack, StringComparison.Ordinal);
        Assert.Contains("GS*FA*RECEIVER*SENDER*20261124*1305*600*X*004010~ST*997*0001~AK1*PO*77~", ack, StringComparison.Ordinal);
        Assert.Contains("AK2*850*0001~AK5*A~", ack, StringComparison.Ordinal);
        Assert.Contains("AK2*850*0002~AK3*BEG*2**3~AK3*PO1*3**3~AK5*R*5~", ack, StringComparison.Ordinal);
        Assert.Contains("AK2*850*0003~AK3*BEG*2**8~AK4*2*92*7*XX~AK5*E*5~", ack, StringComparison.Ordinal);
        Assert.Contains("AK9*P*3*3*2~", ack, StringComparison.Ordinal);

        // The generated acknowledgement is itself a valid 997.
        var again = EdiValidation.Validate(TestUtil.Stream(ack));
        Assert.Equal("", string.Join("\n", again.AllIssues));
    }

    [Fact]
    public void Ack_999_uses_ik_segments_and_validates()
    {
        var text = File.ReadAllText(TestUtil.SamplePath("x12-005010-810-and-850-groups.edi")).Replace("BEG*00*NE*PO-5000**20261124~", "BEG*00*NE*PO-5000**20261324~", StringComparison.Ordinal);
        var (_, ack) = Ack(text);
        Assert.Contains("ST*999*0001*005010X231A1~AK1*IN*2001*005010~AK2*810*1001~IK5*A~AK9*A*1*1*1~", ack, StringComparison.Ordinal);
        Assert.Contains("AK2*850*0001*005010~IK3*BEG*2**8~IK4*5*373*8*20261324~IK5*R*5~", ack, StringComparison.Ordinal);
        Assert.Equal("", string.Join("\n", EdiValidation.Validate(TestUtil.Stream(ack)).AllIssues));
    }

    [Fact]
    public void Envelope_errors_go_to_ak5_ak9_and_ta1()
    {
        var (_, ack) = Ack(TestUtil.Isa() + Gs + "ST*850*0001~BEG*00*SA*PO-1**20261124~PO1*1*1*EA*1**VP*A~SE*9*0001~GE*2*77~IEA*1*000000002~");
        Assert.Contains("TA1*000000001*261124*1200*R*001~", ack, StringComparison.Ordinal);
        Assert.Contains("AK5*R*4~", ack, StringComparison.Ordinal);
        Assert.Contains("AK9*R*2*1*0*5~", ack, StringComparison.Ordinal);
    }

    [Fact]
    public void Contrl_reports_messages_segments_and_elements_and_validates()
    {
        string text = "UNA:+.? 'UNB+UNOC:3+BUYER:14+SELLER:14+261124:1200+IC77'"
            + "UNH+1+ORDERS:D:96A:UN'BGM+220+PO1+9'DTM+137:20261124:102'UNS+S'UNT+5+1'"
            + "UNH+2+ORDERS:D:96A:UN'BGM+220+PO2+9'DTM+137:20261124:102'NAD+XX'UNS+S'UNT+6+2'"
            + "UNH+3+ORDERS:D:96A:UN'DTM+137:20261124:102'UNS+S'UNT+4+3'UNZ+3+IC77'";
        var (_, ack) = Ack(text);
        Assert.Contains("UNB+UNOC:3+SELLER:14+BUYER:14+261124:1305+500'UNH+1+CONTRL:D:3:UN'UCI+IC77+BUYER:14+SELLER:14+7'", ack, StringComparison.Ordinal);
        Assert.Contains("UCM+1+ORDERS:D:96A:UN+7'UCM+2+ORDERS:D:96A:UN+7'UCS+4'UCD+12+1'", ack, StringComparison.Ordinal);
        Assert.Contains("UCM+3+ORDERS:D:96A:UN+4'UCS+2+13'", ack, StringComparison.Ordinal);
        Assert.Equal("", string.Join("\n", EdiValidation.Validate(TestUtil.Stream(ack)).AllIssues));
    }

    [Fact]
    public void Incoming_acks_are_matched_to_sent_documents()
    {
        var (_, ack997) = Ack(TestUtil.Isa() + Gs + Good + Bad + Soft + "GE*3*77~IEA*1*000000001~");
        var acks = EdiAckReader.Read(TestUtil.Stream(ack997));
        var sent = new[]
        {
            new EdiSentSet("000000001", "77", "850", "0001"),
            new EdiSentSet("000000001", "77", "850", "0002"),
            new EdiSentSet("000000001", "77", "850", "0003"),
            new EdiSentSet("000000001", "78", "850", "0001"),
        };
        var m = EdiAckReader.Match(acks, sent);
        Assert.Equal([EdiAckStatus.Accepted, EdiAckStatus.Rejected, EdiAckStatus.AcceptedWithErrors, null], m.Select(x => x.Status));
        Assert.Contains("3", m[1].Codes);

        string edifact = "UNB+UNOA:3+BUYER:14+SELLER:14+261124:1200+IC9'UNH+1+ORDERS:D:96A:UN'DTM+137:20261124:102'UNS+S'UNT+4+1'UNZ+1+IC9'";
        var (_, contrl) = Ack(edifact);
        var cm = EdiAckReader.Match(EdiAckReader.Read(TestUtil.Stream(contrl)), [new EdiSentSet("IC9", "", "ORDERS", "1"), new EdiSentSet("IC8", "", "ORDERS", "1")]);
        Assert.Equal(EdiAckStatus.Rejected, cm[0].Status);
        Assert.Null(cm[1].Status);
    }
}

public class Ta1Tests
{
    [Fact]
    public void Ta1_interchange_acknowledgements_are_read_and_matched()
    {
        string text = TestUtil.Isa("000000901") + "TA1*000000077*261124*1200*R*022~IEA*0*000000901~";
        var acks = EdiAckReader.Read(TestUtil.Stream(text));
        var ta1 = Assert.Single(acks);
        Assert.Equal("TA1", ta1.Type);
        var m = EdiAckReader.Match(acks, [new EdiSentSet("000000077", "1", "810", "0001"), new EdiSentSet("000000078", "1", "810", "0001")]);
        Assert.Equal(EdiAckStatus.Rejected, m[0].Status);
        Assert.Equal(["022"], m[0].Codes);
        Assert.Null(m[1].Status);
    }
}
