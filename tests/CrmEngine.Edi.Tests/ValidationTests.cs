namespace CrmEngine.Edi.Tests;

public class ValidationTests
{
    private static List<EdiIssue> Issues(string text) => EdiValidation.Validate(TestUtil.Stream(text)).AllIssues.ToList();

    private const string Gs = "GS*PO*S*R*20261124*1200*5*X*004010~";

    [Theory]
    [InlineData("x12-850-004010.edi")]
    [InlineData("x12-005010-810-and-850-groups.edi")]
    [InlineData("edifact-orders-d96a-unoc-latin1.edi")]
    public void Valid_samples_have_no_issues(string sample)
    {
        var report = EdiValidation.ValidateFile(TestUtil.SamplePath(sample));
        Assert.Equal("", string.Join("\n", report.AllIssues.Select(i => i.ToString())));
        Assert.All(report.Interchanges, i => Assert.Equal(EdiAckStatus.Accepted, i.Status));
    }

    [Fact]
    public void A_line_wrapped_after_a_release_character_validates_like_the_unwrapped_line_with_lines_counted()
    {
        // "?" at the end of a wrapped line escapes the "+" on the next line: FTX04 is "Door 3+ramp B" either way, and the
        // wrong segment count in UNT is reported on the line UNT stands on (the second).
        const string head = "UNA:+.? 'UNB+UNOC:3+S:14+R:14+261124:1200+7'UNH+1+ORDERS:D:96A:UN'BGM+220+PO-1+9'FTX+AAI+++Door 3?";
        const string tail = "+ramp B'UNS+S'UNT+4+1'UNZ+1+7'";
        foreach (var lineBreak in new[] { "\n", "\r\n" })
        {
            var issues = Issues(head + lineBreak + tail);
            var flat = Issues(head + tail);
            Assert.DoesNotContain(issues, i => i.SegmentTag == "FTX");
            Assert.Equal(flat.Select(i => $"{i.Code} {i.SegmentPosition} {i.SegmentTag}"), issues.Select(i => $"{i.Code} {i.SegmentPosition} {i.SegmentTag}"));
            Assert.Equal(2, issues.Single(i => i.SegmentTag == "UNT").Line);
            Assert.Equal(1, flat.Single(i => i.SegmentTag == "UNT").Line);
        }
    }

    [Fact]
    public void Every_embedded_definition_loads_for_each_version()
    {
        var d = EdiDefinitions.Default;
        foreach (var v in new[] { "004010", "005010" })
        {
            foreach (var id in new[] { "850", "855", "856", "810", "997", "999" })
            {
                Assert.NotNull(d.FindMessage(EdiStandard.X12, v, id));
            }
        }

        foreach (var v in new[] { "D96A", "D01B" })
        {
            foreach (var id in new[] { "ORDERS", "ORDRSP", "DESADV", "INVOIC", "CONTRL" })
            {
                Assert.NotNull(d.FindMessage(EdiStandard.Edifact, v, id));
            }
        }
    }

    [Fact]
    public void Missing_mandatory_segment_names_set_position_and_code()
    {
        var issues = Issues(TestUtil.Isa() + Gs + "ST*850*0001~CUR*BY*USD~PO1*1*1*EA*1**VP*A~SE*4*0001~GE*1*5~IEA*1*000000001~");
        var i = Assert.Single(issues);
        Assert.Equal(EdiErrorKind.MandatorySegmentMissing, i.Kind);
        Assert.Equal("BEG", i.SegmentTag);
        Assert.Equal(2, i.SegmentPosition);
        Assert.Equal("3", i.Code);
        Assert.Equal("0001", i.SetControlNumber);
        Assert.Equal("5", i.GroupControlNumber);
        Assert.Equal("000000001", i.InterchangeControlNumber);
    }

    [Fact]
    public void Element_errors_carry_position_reference_and_ak4_code()
    {
        var issues = Issues(TestUtil.Isa() + Gs + "ST*850*0001~BEG*00*XX*PO-1**20261399~PO1*1*1.2.3*EA*1**VP*A~PID*F****D*EXTRA~SE*5*0001~GE*1*5~IEA*1*000000001~");
        Assert.Contains(issues, i => i.Kind == EdiErrorKind.InvalidCodeValue && i.SegmentTag == "BEG" && i.ElementPosition == 2 && i.Code == "7" && i.BadValue == "XX");
        Assert.Contains(issues, i => i.Kind == EdiErrorKind.InvalidDate && i.ElementPosition == 5 && i.Code == "8" && i.ElementReference == "373");
        Assert.Contains(issues, i => i.Kind == EdiErrorKind.InvalidCharacter && i.SegmentTag == "PO1" && i.SegmentPosition == 3 && i.ElementPosition == 2);
        Assert.Contains(issues, i => i.Kind == EdiErrorKind.TooManyElements && i.SegmentTag == "PID" && i.ElementPosition == 6 && i.Code == "3");
    }

    [Fact]
    public void Unknown_and_misplaced_segments_and_max_use()
    {
        var issues = Issues(TestUtil.Isa() + Gs + "ST*850*0001~BEG*00*SA*PO-1**20261124~CUR*BY*USD~CUR*BY*USD~ZZZ*1~PO1*1*1*EA*1**VP*A~BEG*00*SA*X**20261124~SE*7*0001~GE*1*5~IEA*1*000000001~");
        Assert.Contains(issues, i => i.Kind == EdiErrorKind.SegmentOverMaximum && i.SegmentPosition == 4);
        Assert.Contains(issues, i => i.Kind == EdiErrorKind.SegmentNotInSet && i.SegmentTag == "ZZZ" && i.Code == "6");
        Assert.Contains(issues, i => i.Kind == EdiErrorKind.SegmentOutOfSequence && i.SegmentTag == "BEG" && i.SegmentPosition == 7);
    }

    [Fact]
    public void Edifact_composite_component_errors_use_0085_codes()
    {
        string text = "UNB+UNOA:3+S+R+261124:1200+9'UNH+1+ORDERS:D:96A:UN'BGM+220+PO1+9'DTM+137:20261124:102:EXTRA'NAD+XX'LIN+1++4000862141404:EN'QTY+21:abc'UNS+S'UNT+8+1'UNZ+1+9'";
        var issues = Issues(text);
        Assert.Contains(issues, i => i.Kind == EdiErrorKind.TooManyComponents && i.SegmentTag == "DTM" && i.Code == "16");
        Assert.Contains(issues, i => i.Kind == EdiErrorKind.InvalidCodeValue && i.SegmentTag == "NAD" && i.Code == "12");
        Assert.Contains(issues, i => i.Kind == EdiErrorKind.InvalidCharacter && i.SegmentTag == "QTY" && i.ElementPosition == 1 && i.ComponentPosition == 2);
        Assert.DoesNotContain(issues, i => i.SegmentTag == "BGM");
    }

    [Fact]
    public void Unsupported_version_is_reported_not_thrown()
    {
        var issues = Issues("UNB+UNOA:3+S+R+261124:1200+9'UNH+1+ORDERS:D:93A:UN'BGM+220+PO1+9'UNT+3+1'UNZ+1+9'");
        var i = Assert.Single(issues);
        Assert.Equal(EdiErrorKind.SetNotSupported, i.Kind);
        Assert.Contains("93A", i.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Hl_parent_must_exist_in_856()
    {
        var issues = Issues(TestUtil.Isa() + "GS*SH*S*R*20261124*1200*5*X*004010~ST*856*0001~BSN*00*SHIP1*20261124*1200~HL*1**S~HL*2*9*O~SE*5*0001~GE*1*5~IEA*1*000000001~");
        Assert.Contains(issues, i => i.SegmentTag == "HL" && i.SegmentPosition == 4 && i.ElementPosition == 2);
    }

    [Fact]
    public void Statuses_follow_the_severity_of_issues()
    {
        string bad = "ST*850*0002~CUR*BY*USD~SE*3*0002~";
        string soft = "ST*850*0003~BEG*00*SA*PO-1**20261124~PO1*1*1*EA*1**VP*A~PID*F****D*EXTRA~SE*5*0003~";
        string good = "ST*850*0001~BEG*00*SA*PO-1**20261124~PO1*1*1*EA*1**VP*A~SE*4*0001~";
        var report = EdiValidation.Validate(TestUtil.Stream(TestUtil.Isa() + Gs + good + bad + soft + "GE*3*5~IEA*1*000000001~"));
        var g = report.Interchanges[0].Groups[0];
        Assert.Equal([EdiAckStatus.Accepted, EdiAckStatus.Rejected, EdiAckStatus.AcceptedWithErrors], g.Sets.Select(s => s.Status));
        Assert.Equal(EdiAckStatus.PartiallyAccepted, g.Status);
        Assert.Equal(2, g.AcceptedCount);
    }
}

public class TreeTests
{
    [Fact]
    public void Validator_builds_the_loop_tree_from_the_definition()
    {
        using var r = new EdiStreamReader(File.OpenRead(TestUtil.SamplePath("x12-850-004010.edi")));
        while (r.Read() != EdiItemKind.TransactionSet)
        {
        }

        var set = r.TransactionSet!;
        var tree = new EdiValidator().Validate(set, buildTree: true)!;
        string Show(EdiNode n) => n.IsLoop ? $"{n.LoopId}({string.Join(",", n.Children.Select(Show))})" : set.Segments[n.SegmentIndex].Tag;
        Assert.Equal("850(ST,BEG,CUR,REF,DTM,N1(N1,N3,N4),N1(N1,N3,N4),PO1(PO1,PID(PID)),PO1(PO1,PID(PID)),CTT(CTT,AMT),SE)", Show(tree));
        Assert.Empty(set.Issues);
    }
}

public class SyntaxNoteTests
{
    [Fact]
    public void X12_syntax_notes_report_conditional_and_exclusion_codes()
    {
        string text = TestUtil.Isa() + "GS*PO*S*R*20261124*1200*5*X*004010~ST*850*0001~BEG*00*SA*PO-1**20261124~REF*DP~PER*BD*Jane*TE~"
            + "PO1*1**EA*1**VP~SE*6*0001~GE*1*5~IEA*1*000000001~";
        var issues = EdiValidation.Validate(TestUtil.Stream(text)).AllIssues.ToList();
        Assert.Contains(issues, i => i.Kind == EdiErrorKind.ConditionalElementMissing && i.SegmentTag == "REF" && i.ElementPosition == 2 && i.Code == "2" && i.Message.Contains("R0203", StringComparison.Ordinal));
        Assert.Contains(issues, i => i.Kind == EdiErrorKind.ConditionalElementMissing && i.SegmentTag == "PER" && i.ElementPosition == 4);
        Assert.Contains(issues, i => i.Kind == EdiErrorKind.ConditionalElementMissing && i.SegmentTag == "PO1" && i.ElementPosition == 2 && i.Message.Contains("C0302", StringComparison.Ordinal));
        Assert.Contains(issues, i => i.Kind == EdiErrorKind.ConditionalElementMissing && i.SegmentTag == "PO1" && i.ElementPosition == 7);
    }

    [Fact]
    public void Mandatory_entries_after_a_loop_trigger_are_missing_when_the_loop_closes()
    {
        // Loops whose mandatory entries follow the trigger: each is reported when the next repeat, an outer segment or the
        // trailer closes the loop, at the position of the segment that closed it.
        var defs = EdiDefinitions.LoadEmbedded();
        string segments = string.Concat("ABCDEFG".Select(c => $"segment ZZ{c} Test\n  01 1 O AN 1/5\n"));
        defs.Load(new StringReader("standard x12\nversions 004010\n" + segments + "message 862 Test\n  ST M 1\n  ZZA M 1\n  loop ZZB O 10\n    ZZB M 1\n    ZZC O 1\n    ZZD M 1\n    loop ZZE O 5\n      ZZE M 1\n      ZZF M 1\n    end\n  end\n  ZZG M 1\n  SE M 1\nendmessage\n"), "loops.def");
        string text = TestUtil.Isa() + "GS*SS*S*R*20261124*1200*5*X*004010~ST*862*0001~ZZA*1~ZZB*1~ZZC*1~ZZB*2~ZZD*2~ZZE*1~ZZE*2~ZZF*2~SE*10*0001~GE*1*5~IEA*1*000000001~";
        var issues = EdiValidation.Validate(TestUtil.Stream(text), new EdiValidationOptions { Definitions = defs }).AllIssues.ToList();
        Assert.Equal(
            ["MandatorySegmentMissing ZZD 5", "MandatorySegmentMissing ZZF 8", "MandatorySegmentMissing ZZG 10"],
            issues.Select(i => $"{i.Kind} {i.SegmentTag} {i.SegmentPosition}"));

        // Nothing missing: no issue.
        string complete = TestUtil.Isa() + "GS*SS*S*R*20261124*1200*5*X*004010~ST*862*0001~ZZA*1~ZZB*1~ZZD*1~ZZE*1~ZZF*1~ZZB*2~ZZC*2~ZZD*2~ZZG*1~SE*11*0001~GE*1*5~IEA*1*000000001~";
        Assert.Empty(EdiValidation.Validate(TestUtil.Stream(complete), new EdiValidationOptions { Definitions = defs }).AllIssues);
    }

    [Fact]
    public void Exclusion_rules_from_added_definitions_use_code_10()
    {
        var defs = EdiDefinitions.LoadEmbedded();
        defs.Load(new StringReader("standard x12\nversions 004010\nsegment ZZA Test\n  01 1 O AN 1/5\n  02 2 O AN 1/5\n  rule E 01 02\nmessage 860 Test\n  ST M 1\n  ZZA M 1\n  SE M 1\nendmessage\n"), "test.def");
        string text = TestUtil.Isa() + "GS*PC*S*R*20261124*1200*5*X*004010~ST*860*0001~ZZA*A*B~SE*3*0001~GE*1*5~IEA*1*000000001~";
        var issue = Assert.Single(EdiValidation.Validate(TestUtil.Stream(text), new EdiValidationOptions { Definitions = defs }).AllIssues);
        Assert.Equal(EdiErrorKind.ExclusionConditionViolated, issue.Kind);
        Assert.Equal("10", issue.Code);
        Assert.Equal(2, issue.ElementPosition);
    }
}

public class DefinitionFormatTests
{
    [Fact]
    public void Skipped_positions_keep_later_elements_in_place_and_bad_lines_name_file_and_line()
    {
        var defs = EdiDefinitions.LoadEmbedded();
        defs.Load(new StringReader("standard x12\nversions 004010\nsegment ZZB Test\n  01 1 M AN 1/5\n  04 4 M ID 2/2 AA\nmessage 861 Test\n  ST M 1\n  ZZB M 1\n  SE M 1\nendmessage\n"), "test.def");
        string text = TestUtil.Isa() + "GS*RC*S*R*20261124*1200*5*X*004010~ST*861*0001~ZZB*A*anything*x*BB~SE*3*0001~GE*1*5~IEA*1*000000001~";
        var issue = Assert.Single(EdiValidation.Validate(TestUtil.Stream(text), new EdiValidationOptions { Definitions = defs }).AllIssues);
        Assert.Equal(EdiErrorKind.InvalidCodeValue, issue.Kind);
        Assert.Equal(4, issue.ElementPosition);

        var ex = Assert.Throws<EdiException>(() => new EdiDefinitions().Load(new StringReader("standard x12\nversions 004010\nsegment ZZC Test\n  01 1 M QQ 1/5\n"), "bad.def"));
        Assert.Contains("bad.def: line 4", ex.Message, StringComparison.Ordinal);
    }
}
