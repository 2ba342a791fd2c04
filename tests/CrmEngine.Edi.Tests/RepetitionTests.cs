using System.Text;

namespace CrmEngine.Edi.Tests;

public class RepetitionTests
{
    private const string X12Sample = "x12-850-005010-repeats.edi";
    private const string EdifactSample = "edifact-orders-d01b-syntax4-repeats.edi";

    private sealed class FixedTime : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => new(2026, 11, 24, 13, 5, 0, TimeSpan.Zero);
    }

    private static EdiDefinitions PartnerDefinitions()
    {
        var defs = EdiDefinitions.LoadEmbedded();
        using var r = File.OpenText(TestUtil.SamplePath("partner-repeats.def"));
        defs.Load(r, "partner-repeats.def");
        return defs;
    }

    private static EdiValidationReport Validate(string sample, EdiDefinitions? defs = null)
        => EdiValidation.ValidateFile(TestUtil.SamplePath(sample), new EdiValidationOptions { Definitions = defs });

    private static List<EdiIssue> Issues(EdiValidationReport report, string control)
        => report.Interchanges.SelectMany(i => i.Groups).SelectMany(g => g.Sets).Single(s => s.ControlNumber == control).Issues.ToList();

    [Fact]
    public void X12_repetitions_are_split_and_read_by_repeat()
    {
        using var reader = EdiStreamReader.Open(TestUtil.SamplePath(X12Sample));
        Assert.Equal(EdiItemKind.InterchangeStart, reader.Read());
        Assert.Equal(EdiItemKind.GroupStart, reader.Read());
        Assert.Equal(EdiItemKind.TransactionSet, reader.Read());
        var refSeg = reader.TransactionSet!.Segments[2];
        Assert.Equal("REF", refSeg.Tag);
        Assert.Equal(3, refSeg.RepeatCount(2));
        Assert.Equal("DOCK-7", refSeg.Get(2));
        Assert.Equal("ROW 12", refSeg.Get(2, 0, 3));
        Assert.Equal(["DOCK-7", "GATE-B", "ROW 12"], refSeg.GetRepeats(2));
        Assert.Equal(1, refSeg.RepeatCount(1));
        Assert.Equal(0, refSeg.RepeatCount(3));

        // Typed model: one reference per repetition; written back as separate REF segments, read back the same.
        var doc = EdiDocuments.FromSet(reader.TransactionSet)!;
        Assert.Equal(["DOCK-7", "GATE-B", "ROW 12"], doc.References.Where(r => r.Qualifier == "ZZ").Select(r => r.Value));
    }

    [Fact]
    public void X12_repetition_of_a_non_repeating_element_is_an_error_naming_the_repeat()
    {
        var report = Validate(X12Sample);
        var issue = Assert.Single(Issues(report, "0001"));
        Assert.Equal(EdiErrorKind.TooManyRepetitions, issue.Kind);
        Assert.Equal(2, issue.ElementPosition);
        Assert.Equal(2, issue.Repetition);
        Assert.Equal("12", issue.Code);
        Assert.Equal("GATE-B", issue.BadValue);
        Assert.Contains("element 02 repetition 2 (127)", issue.ToString(), StringComparison.Ordinal);

        string ack = EdiAcknowledgements.WriteToString(report, null, new EdiControlNumberSequence(500, 600, 1), new FixedTime());
        Assert.Contains("IK3*REF*3**8~IK4*2::2*127*12*GATE-B~", ack, StringComparison.Ordinal);
        var again = EdiValidation.Validate(TestUtil.Stream(ack));
        Assert.Equal("", string.Join("\n", again.AllIssues));
    }

    [Fact]
    public void X12_repetitions_validate_against_the_max_repeat_of_the_definition()
    {
        var report = Validate(X12Sample, PartnerDefinitions());
        Assert.Empty(Issues(report, "0001"));
        var issues = Issues(report, "0002");
        Assert.Equal(2, issues.Count);
        Assert.Equal((EdiErrorKind.TooManyRepetitions, 3, 2, 4, "A4"), (issues[0].Kind, issues[0].SegmentPosition, issues[0].ElementPosition, issues[0].Repetition, issues[0].BadValue));
        Assert.Contains("repeats more than 3 times", issues[0].Message, StringComparison.Ordinal);
        Assert.Equal((EdiErrorKind.ElementTooLong, 4, 2, 3), (issues[1].Kind, issues[1].SegmentPosition, issues[1].ElementPosition, issues[1].Repetition));
    }

    [Fact]
    public void Edifact_syntax_4_uses_star_as_repetition_separator_and_honours_release()
    {
        using var reader = EdiStreamReader.Open(TestUtil.SamplePath(EdifactSample));
        Assert.Equal(EdiItemKind.InterchangeStart, reader.Read());
        Assert.Equal((byte)'*', reader.Interchange!.Delimiters.Repetition);
        Assert.Equal(EdiItemKind.GroupStart, reader.Read());
        Assert.Equal(EdiItemKind.TransactionSet, reader.Read());
        var ftx = reader.TransactionSet!.Segments[3];
        Assert.Equal("FTX", ftx.Tag);
        Assert.Equal(2, ftx.RepeatCount(4));
        Assert.Equal("call ahead", ftx.Get(4, 2, 1));
        Assert.Equal("Lieferung an Tor 7 * Zufahrt Süd", ftx.Get(4, 1, 2));
        Assert.Equal("Deliver to dock 7", ftx.Get(4, 1));
    }

    [Fact]
    public void Edifact_repetitions_are_validated_and_reported_in_contrl_with_the_occurrence()
    {
        var plain = Validate(EdifactSample);
        var issue = Assert.Single(Issues(plain, "0001"));
        Assert.Equal((EdiErrorKind.TooManyRepetitions, "35", 4, 2), (issue.Kind, issue.Code, issue.ElementPosition, issue.Repetition));
        string contrl = EdiAcknowledgements.WriteToString(plain, null, new EdiControlNumberSequence(500, 600, 1), new FixedTime());
        Assert.Contains("UCS+4'UCD+35+4::2'", contrl, StringComparison.Ordinal);
        Assert.Equal("", string.Join("\n", EdiValidation.Validate(TestUtil.Stream(contrl)).AllIssues));

        var partner = Validate(EdifactSample, PartnerDefinitions());
        Assert.Empty(Issues(partner, "0001"));
        var over = Assert.Single(Issues(partner, "0002"));
        Assert.Equal((EdiErrorKind.TooManyRepetitions, 3, "three"), (over.Kind, over.Repetition, over.BadValue));
    }

    [Theory]
    [InlineData(X12Sample, "999")]
    [InlineData(EdifactSample, "CONTRL")]
    public void Element_errors_keep_segment_element_component_and_repetition_through_ack_write_and_read(string sample, string ackType)
    {
        var report = Validate(sample, PartnerDefinitions());
        var sent = report.Interchanges.SelectMany(i => i.Groups).SelectMany(g => g.Sets).ToList();
        var expected = sent.SelectMany(s => s.Issues.Where(i => i.ElementPosition > 0).Select(i => (s.ControlNumber, i.SegmentPosition, i.ElementPosition, i.ComponentPosition, i.Repetition, i.Code))).ToList();
        Assert.Contains(expected, e => e.Repetition > 1);

        string ack = EdiAcknowledgements.WriteToString(report, null, new EdiControlNumberSequence(500, 600, 1), new FixedTime());
        var received = Assert.Single(EdiAckReader.Read(TestUtil.Stream(ack)));
        Assert.Equal(ackType, received.Type);
        var actual = received.Groups.SelectMany(g => g.Sets).SelectMany(s => s.ElementErrors.Select(e => (s.ControlNumber, e.SegmentPosition, e.ElementPosition, e.ComponentPosition, e.Repetition, e.Code))).ToList();
        Assert.Equal(expected, actual);

        if (ackType == "999")
        {
            // X12 also carries the segment tag, the element reference and a copy of the bad value.
            var tooMany = received.Groups.Single().Sets.Single(s => s.ControlNumber == "0002").ElementErrors[0];
            Assert.Equal(("REF", "127", "A4", 4), (tooMany.SegmentTag, tooMany.ElementReference, tooMany.BadValue, tooMany.Repetition));
        }
    }

    [Fact]
    public void Una_position_5_is_a_repetition_separator_only_in_syntax_version_4()
    {
        static byte Rep(string text)
        {
            using var r = new EdiStreamReader(TestUtil.Stream(text));
            r.Read();
            return r.Interchange!.Delimiters.Repetition;
        }

        Assert.Equal(0, Rep("UNA:+.?^'UNB+UNOA:3+S+R+261124:1200+1'UNZ+0+1'"));
        Assert.Equal((byte)'^', Rep("UNA:+.?^'UNB+UNOA:4+S+R+20261124:1200+1'UNZ+0+1'"));
        Assert.Equal((byte)'*', Rep("UNB+UNOA:4+S+R+20261124:1200+1'UNZ+0+1'"));
        Assert.Equal(0, Rep("UNB+UNOA:3+S+R+261124:1200+1'UNZ+0+1'"));
    }

    [Fact]
    public void Parse_json_shows_repeats()
    {
        var json = new StringWriter();
        EdiCommands.Parse(TestUtil.SamplePath(X12Sample), json);
        Assert.Matches("\\[\\s*\"REF\",\\s*\"ZZ\",\\s*\\{\\s*\"repeats\":\\s*\\[\\s*\"DOCK-7\",\\s*\"GATE-B\",\\s*\"ROW 12\"\\s*\\]\\s*\\}\\s*\\]", json.ToString());

        var ejson = new StringWriter();
        EdiCommands.Parse(TestUtil.SamplePath(EdifactSample), ejson);
        string compact = ejson.ToString().Replace("\n", "", StringComparison.Ordinal).Replace("\r", "", StringComparison.Ordinal);
        Assert.Matches("\\{\\s*\"repeats\":\\s*\\[\\s*\\[\\s*\"Deliver to dock 7\",\\s*\"call ahead\"\\s*\\],\\s*\"Lieferung an Tor 7 \\* Zufahrt Süd\"\\s*\\]\\s*\\}", compact);
    }

    [Fact]
    public void Writer_writes_repetitions_that_read_back()
    {
        foreach (var standard in new[] { EdiStandard.Edifact })
        {
            var ms = new MemoryStream();
            var o = new EdiWriterOptions { Standard = standard, InterchangeVersion = "00501", SyntaxVersion = "4", CharacterSet = "UNOC", Time = new FixedTime() };
            using (var w = new EdiWriter(ms, o))
            {
                w.BeginInterchange();
                w.BeginGroup(standard == EdiStandard.X12 ? "PO" : null, standard == EdiStandard.X12 ? "005010" : "D01B");
                w.BeginSet(standard == EdiStandard.X12 ? "850" : "ORDERS");
                w.Segment("REF").Element("ZZ").Repeated("A", "B*?^", "", "D", "").EndSegment();
                w.Segment("FTX").Element("PUR").Element("").Element("").RepeatedComposite(["x", "y"], ["z"]).EndSegment();
                w.EndSet();
                w.EndGroup();
                w.EndInterchange();
            }

            ms.Position = 0;
            using var r = new EdiStreamReader(ms);
            while (r.Read() != EdiItemKind.TransactionSet)
            {
            }

            var seg = r.TransactionSet!.Segments[1];
            Assert.Equal(["A", "B*?^", "", "D"], seg.GetRepeats(2));
            var ftx = r.TransactionSet.Segments[2];
            Assert.Equal("y", ftx.Get(4, 2, 1));
            Assert.Equal("z", ftx.Get(4, 1, 2));
        }
    }

    [Fact]
    public void X12_writer_round_trip_and_refusal_before_00402()
    {
        var ms = new MemoryStream();
        using (var w = new EdiWriter(ms, new EdiWriterOptions { InterchangeVersion = "00501", Time = new FixedTime() }))
        {
            w.BeginInterchange();
            w.BeginGroup("PO", "005010");
            w.BeginSet("850");
            w.Segment("REF").Element("ZZ").Repeated("A", "B", "C").EndSegment();
            w.EndSet();
            w.EndGroup();
            w.EndInterchange();
        }

        string text = Encoding.UTF8.GetString(ms.ToArray());
        Assert.Contains("*^*00501*", text, StringComparison.Ordinal);
        Assert.Contains("REF*ZZ*A^B^C~", text, StringComparison.Ordinal);

        using var old = new EdiWriter(new MemoryStream(), new EdiWriterOptions { InterchangeVersion = "00401" });
        old.BeginInterchange();
        old.Segment("REF").Element("ZZ");
        Assert.Throws<EdiException>(() => old.Repeated("A", "B"));
    }
}
