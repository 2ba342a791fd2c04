using System.Text.Json;

namespace CrmEngine.Edi.Tests;

/// <summary>Every sample under samples/edi has a stated outcome; the commands behave as a user of `crm edi` sees them.</summary>
public class SampleTests
{
    public static TheoryData<string> ValidSamples() =>
    [
        "x12-850-004010.edi", "x12-850-wrapped-80col-crlf.edi", "x12-855-005010-crlf.edi", "x12-856-004010.edi", "x12-810-004010.edi",
        "x12-005010-810-and-850-groups.edi", "x12-997-incoming.edi", "edifact-orders-d96a-unoc-latin1.edi", "edifact-orders-d01b-una-star-tilde.edi",
        "edifact-desadv-invoic-ordrsp-multi.edi", "edifact-contrl-incoming.edi", "mixed-several-interchanges.edi",
    ];

    [Theory]
    [MemberData(nameof(ValidSamples))]
    public void Valid_samples_validate_clean_and_parse_to_json(string sample)
    {
        var o = new StringWriter();
        Assert.Equal(EdiCommands.ExitOk, EdiCommands.Validate(TestUtil.SamplePath(sample), o));
        Assert.Contains("0 issue(s)", o.ToString(), StringComparison.Ordinal);

        var json = new StringWriter();
        Assert.Equal(EdiCommands.ExitOk, EdiCommands.Parse(TestUtil.SamplePath(sample), json));
        using var doc = JsonDocument.Parse(json.ToString());
        Assert.True(doc.RootElement.GetProperty("interchanges").GetArrayLength() >= 1);
    }

    [Theory]
    [InlineData("x12-850-wrong-counts-and-control-numbers.edi", "SE declares 7 segments but the set has 5 [code 4]", "IEA control number '000000600' does not match header '000000601' [code 001]")]
    [InlineData("x12-850-missing-mandatory.edi", "set 850 0001 segment 2 BEG: mandatory segment BEG is missing [code 3]", "segment 2 BEG element 02 (92): mandatory element BEG02 (92) is missing [code 1]")]
    [InlineData("edifact-orders-wrong-references.edi", "UNT control number '3' does not match header '2' [code 28]", "UNZ declares 3 groups/messages but the interchange has 2 [code 29]")]
    [InlineData("edifact-invoic-missing-moa.edi", "message INVOIC 1 segment 7 MOA: mandatory loop SG48 (segment MOA) is missing [code 13]", "line 9 (byte 163)")]
    [InlineData("x12-850-unsupported-version.edi", "version '003060' is not supported for 850", "segment 1 ST")]
    public void Faulty_samples_list_errors_with_positions(string sample, string expected1, string expected2)
    {
        var o = new StringWriter();
        Assert.Equal(EdiCommands.ExitInvalid, EdiCommands.Validate(TestUtil.SamplePath(sample), o));
        Assert.Contains(expected1, o.ToString(), StringComparison.Ordinal);
        Assert.Contains(expected2, o.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("empty.edi", "line 1, column 1 (byte 0): empty input")]
    [InlineData("not-edi-text.edi", "not EDI: expected an interchange header ISA, UNA or UNB but found \"Order 4711")]
    [InlineData("x12-850-truncated.edi", "line 17, column 1 (byte 502): truncated input")]
    [InlineData("no-such-file.edi", "file not found")]
    public void Unreadable_files_exit_2_with_a_message_naming_file_and_position(string sample, string expected)
    {
        foreach (var run in new Func<string, TextWriter, int>[] { EdiCommands.Validate, (f, w) => EdiCommands.Parse(f, w), (f, w) => EdiCommands.Ack(f, w) })
        {
            var o = new StringWriter();
            Assert.Equal(EdiCommands.ExitUnreadable, run(TestUtil.SamplePath(sample), o));
            Assert.Contains(sample, o.ToString(), StringComparison.Ordinal);
            Assert.Contains(expected, o.ToString(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Parse_json_carries_documents_segments_and_non_ascii_text()
    {
        var json = new StringWriter();
        EdiCommands.Parse(TestUtil.SamplePath("edifact-orders-d96a-unoc-latin1.edi"), json);
        using var doc = JsonDocument.Parse(json.ToString());
        var set = doc.RootElement.GetProperty("interchanges")[0].GetProperty("groups")[0].GetProperty("transactionSets")[0];
        Assert.Equal("ORDERS", set.GetProperty("id").GetString());
        Assert.Equal("Müller Großhandel GmbH", set.GetProperty("document").GetProperty("Parties")[1].GetProperty("Name").GetString());
        var sg2 = set.GetProperty("segments").EnumerateArray().First(s => s.ValueKind == JsonValueKind.Object && s.GetProperty("loop").GetString() == "SG2");
        var nad = sg2.GetProperty("segments")[0];
        Assert.Equal("NAD", nad[0].GetString());
        Assert.Equal("PurchaseOrder", set.GetProperty("document").GetProperty("Type").GetString());
        Assert.Equal("Société Générale d'Épicerie", nad[4].GetString());
        Assert.Equal("UNOC", doc.RootElement.GetProperty("interchanges")[0].GetProperty("characterSet").GetString());
    }

    [Fact]
    public void Ack_command_writes_the_acknowledgement_file()
    {
        string path = Path.Combine(Path.GetTempPath(), $"ack-{Guid.NewGuid():N}.edi");
        try
        {
            var o = new StringWriter();
            Assert.Equal(EdiCommands.ExitInvalid, EdiCommands.Ack(TestUtil.SamplePath("x12-850-missing-mandatory.edi"), o, path));
            Assert.Contains(": 997 Rejected (0 of 2 set(s) accepted)", o.ToString(), StringComparison.Ordinal);
            string ack = File.ReadAllText(path);
            Assert.Contains("AK1*PO*701~AK2*850*0001~AK3*BEG*2**3~", ack, StringComparison.Ordinal);
            Assert.Contains("AK9*R*2*2*0~", ack, StringComparison.Ordinal);

            var c = new StringWriter();
            Assert.Equal(EdiCommands.ExitOk, EdiCommands.Ack(TestUtil.SamplePath("edifact-orders-d01b-una-star-tilde.edi"), c));
            Assert.Contains("UNA=*.? ~UNB*UNOC=3*5412345000013=14*4012345000009=14*", c.ToString(), StringComparison.Ordinal);
            Assert.Contains("UCI*ORD20261124*4012345000009=14*5412345000013=14*7~UCM*0001*ORDERS=D=01B=UN=EAN010*7~", c.ToString(), StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Incoming_sample_acks_match_what_was_sent()
    {
        var acks = EdiAckReader.Read(File.OpenRead(TestUtil.SamplePath("x12-997-incoming.edi")));
        acks.AddRange(EdiAckReader.Read(File.OpenRead(TestUtil.SamplePath("edifact-contrl-incoming.edi"))));
        var m = EdiAckReader.Match(acks, [new EdiSentSet("000000501", "501", "810", "0001"), new EdiSentSet("DES001", "", "DESADV", "1"), new EdiSentSet("000000401", "401", "856", "0001")]);
        Assert.Equal(EdiAckStatus.Rejected, m[0].Status);
        Assert.Contains("8", m[0].Codes);
        Assert.Equal(EdiAckStatus.Accepted, m[1].Status);
        Assert.Null(m[2].Status);
    }
}

public class CommandDispatchTests
{
    [Fact]
    public void Run_dispatches_verbs_and_rejects_bad_usage()
    {
        var o = new StringWriter();
        var e = new StringWriter();
        Assert.Equal(EdiCommands.ExitOk, EdiCommands.Run(["validate", TestUtil.SamplePath("x12-856-004010.edi")], o, e));
        Assert.Equal(EdiCommands.ExitOk, EdiCommands.Run(["ack", TestUtil.SamplePath("x12-856-004010.edi"), "--type", "999"], o, e));
        Assert.Contains("ST*999*0001*005010X231A1~", o.ToString(), StringComparison.Ordinal);
        Assert.Equal(EdiCommands.ExitOk, EdiCommands.Run(["parse", TestUtil.SamplePath("x12-856-004010.edi"), "--no-segments"], o, e));
        Assert.Equal(EdiCommands.ExitUnreadable, EdiCommands.Run(["frobnicate", "x"], o, e));
        Assert.Equal(EdiCommands.ExitUnreadable, EdiCommands.Run(["ack", "x", "--type", "998"], o, e));
        Assert.Equal(EdiCommands.ExitUnreadable, EdiCommands.Run(["parse"], o, e));
        Assert.Contains("usage: crm edi", e.ToString(), StringComparison.Ordinal);
    }
}
