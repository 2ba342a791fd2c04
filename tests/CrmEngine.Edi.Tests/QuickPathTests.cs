using System.Globalization;
using System.Text;

namespace CrmEngine.Edi.Tests;

/// <summary>
/// The validator checks most segments in a quick loop (flattened element, component and syntax-note checks) and sends
/// only what fails to the general path. Both must report exactly the same issues: each set is validated twice, once as
/// shipped and once with the quick loop off, and every field of every issue is compared.
/// </summary>
public class QuickPathTests
{
    private static readonly EdiReaderOptions Limits = new() { MaxSegmentLength = 4096, MaxSegmentsPerSet = 5000, MaxElementsPerSegment = 256, BufferSize = 1024 };

    internal static string Describe(EdiIssue i)
        => string.Join("|", i.Kind, i.InterchangeControlNumber, i.GroupControlNumber, i.SetControlNumber, i.SegmentPosition, i.SegmentTag, i.LoopId,
            i.ElementPosition, i.ComponentPosition, i.Repetition, i.ElementReference, i.BadValue, i.ByteOffset, i.Line, i.Message);

    /// <summary>Every set's issues when each set is validated while it is read (the reader's one-pass path, with the tokenizer's component masks).</summary>
    private static List<string> InlineIssues(byte[] input, bool general)
    {
        var list = new List<string>();
        try
        {
            using var reader = new EdiStreamReader(new MemoryStream(input), Limits) { InlineValidator = new EdiValidator { GeneralPathOnly = general }, KeepSegments = false };
            EdiItemKind kind;
            while ((kind = reader.Read()) != EdiItemKind.None)
            {
                if (kind == EdiItemKind.TransactionSet)
                {
                    list.AddRange(reader.TransactionSet!.Issues.Select(Describe));
                }
            }
        }
        catch (EdiException ex)
        {
            list.Add("error " + ex.Message);
        }

        return list;
    }

    /// <summary>Validates every set of <paramref name="input"/> both ways; returns the number of issues compared (EdiException when unreadable).</summary>
    private static int Compare(byte[] input, string what)
    {
        // One pass (validated while read): the quick checks must report what the general path reports.
        var inlineQuick = InlineIssues(input, general: false);
        var inlineGeneral = InlineIssues(input, general: true);
        Assert.True(inlineQuick.SequenceEqual(inlineGeneral), $"{what} (validated while read)\nquick:\n{string.Join("\n", inlineQuick)}\ngeneral:\n{string.Join("\n", inlineGeneral)}");

        var quick = new EdiValidator();
        var general = new EdiValidator { GeneralPathOnly = true };
        int compared = 0;
        using var reader = new EdiStreamReader(new MemoryStream(input), Limits);
        EdiItemKind kind;
        while ((kind = reader.Read()) != EdiItemKind.None)
        {
            if (kind != EdiItemKind.TransactionSet)
            {
                continue;
            }

            var set = reader.TransactionSet!;
            int envelope = set.Issues.Count;
            quick.Validate(set);
            var a = set.Issues.Skip(envelope).Select(Describe).ToList();
            set.Issues.RemoveRange(envelope, set.Issues.Count - envelope);
            general.Validate(set);
            var b = set.Issues.Skip(envelope).Select(Describe).ToList();
            Assert.True(a.SequenceEqual(b), $"{what}: set {set.Id} {set.ControlNumber}\nquick:\n{string.Join("\n", a)}\ngeneral:\n{string.Join("\n", b)}");
            compared += a.Count;
        }

        return compared;
    }

    [Fact]
    public void Samples_give_the_same_issues_on_both_paths()
    {
        int issues = 0;
        foreach (var seed in FuzzTests.Seeds())
        {
            try
            {
                issues += Compare(seed, "sample");
            }
            catch (EdiException)
            {
                // unreadable samples (empty, not EDI, truncated) are tested elsewhere
            }
        }

        Assert.True(issues > 10, $"only {issues} issues in the samples: the comparison saw too little");
    }

    [Fact]
    public void Crafted_corner_cases_give_the_same_issues_on_both_paths()
    {
        const string Una = "UNA:+.? 'UNB+UNOC:3+S:14+R:14+261124:1200+7'UNH+1+ORDERS:D:96A:UN'";
        string[] edifact =
        [
            "BGM+220+PO-1+9'DTM+137:20261124:102:9'",         // too many components
            "BGM+220+PO-1+9'DTM+:20261124:102'",                // mandatory component missing
            "BGM+220+PO-1+9'DTM+137'",                          // mandatory component absent at the end
            "BGM+220+PO-1+9'DTM+137:2026x124:102'",             // bad numeric-ish value in a component
            "BGM+220:X+PO-1+9'",                                // component on a simple element? (BGM01 is a composite)
            "BGM+220+PO-1:2+9'",                                // component on a simple element
            "BGM+220+PO-1+9'NAD+BY+0042::9++Société?+Générale+Street'",   // non-ASCII and a release in one segment
            "BGM+220+PO-1+9'NAD+XX+0042::9'",                   // code value not allowed
            "BGM+220+PO-1+9'QTY+21:1?:2:PCE'",                  // escaped component separator inside a number
            "BGM+220+PO-1+9'QTY+21:12345678901234567:PCE'",     // numeric too long
            "BGM+220+PO-1+9'PRI+AAA:1.5.5'",                    // two decimal marks
            "BGM+220+PO-1+9'IMD+F++:::" + new string('x', 300) + "'",   // text too long in a component
            "BGM+220+PO-1+9'CUX+2:EUR:9:7:8'",
            "BGM+220+PO-1+9'LIN+1++4000862111206:EN+extra+++++'",
            "BGM+220+PO-1+9'LIN+1++4000862111206:ZZ'",
            "BGM+220+PO-1+9'LIN+1++4000862111206:EN++'",          // empty elements beyond the last one used
            "BGM+220+PO-1+9'LIN+1++4000862111206:EN+1+2+3+4+5+6+7'", // elements beyond the definition, short segment
            "BGM+220+PO-1+9'QTY+21:484:PCE:X'",                 // one component too many in a one-block segment
            "BGM+220+PO-1+9'QTY+:484:PCE'",                     // mandatory component empty in a one-block segment
            "BGM+220+PO-1+9'QTY'",                              // mandatory composite absent
            "BGM+220+PO-1+9'QTY+21:4x4:PCE'",                   // bad number in a one-block segment
            "BGM+220+PO-1+9'PRI+AAA:616.39:CT:AAA:1:PCE:X'",    // composite overflow past 32 bytes
            "BGM+220+PO-1+9'DTM+137:20261124:102+X'",           // element beyond a one-element segment
            "BGM+220+PO-1+9'NAD+ST+0043::9++Distribution Center 0'",             // 37 bytes, composites, valid
            "BGM+220+PO-1+9'LIN+123456+1+40008621112064000862:EN:AB:CD:EF'",     // too many components past byte 32
            "BGM+220+PO-1+9'PIA+1+ART-8933:SA+ART-8934:SA+ART-8935:XX'",         // code value error past byte 32
            "BGM+220+PO-1+9'PIA+1+ART-8933:SA+ART-8934:SA+ART-8935:SA+A-1:SA+B:SA'", // past 64 bytes: mask unknown
            "BGM+220+PO-1+9'LIN+1++4000862128570:EN'QTY+21:4x4:PCE'",                // numbers in composites placed in their group
            "BGM+220+PO-1+9'LIN+1++4000862128570:EN'QTY+21:-4.5,1:PCE'",
            "BGM+220+PO-1+9'LIN+1++4000862128570:EN'QTY+21:1234567890123456:PCE'",
            "BGM+220+PO-1+9'LIN+1++4000862128570:EN'QTY+21:+:PCE'",
            "BGM+220+PO-1+9'LIN+1++4000862128570:EN'QTY+21:x4:PCE'",
            "BGM+220+PO-1+9'LIN+1++4000862128570:EN'PRI+AAA:-616,39'",
            "BGM+220+PO-1+9'LIN+1++4000862128570:EN'PRI+AAA:616.3.9'",
            "BGM+220+PO-1+9'LIN+1++4000862128570:EN'QTY+21:484:PCE'PRI+AAA:616.39'", // valid
            "BGM+220+PO-1+9'QTY+21:-484:PCE'",                  // signed number (flat check: digit bit mask)
            "BGM+220+PO-1+9'QTY+21:4,84:PCE'",                  // decimal comma
            "BGM+220+PO-1+9'QTY+21:4.8,4:PCE'",                 // two different decimal marks
            "BGM+220+PO-1+9'QTY+21:+:PCE'",                     // a sign and no digit
            "BGM+220+PO-1+9'QTY+21:-+4:PCE'",                   // two signs
            "BGM+220+PO-1+9'QTY+21:4-:PCE'",                    // sign at the end
            "BGM+220+PO-1+9'QTY+21:x4:PCE'",                    // a letter where a sign may be
            "BGM+220+PO-1+9'MOA+86:123456789012345678'",        // 18 digits: too long
            "BGM+220+PO-1+9'MOA+86:-12345678901234567.'",       // 17 digits with sign and mark

            // Release characters and ISO 8859-1 text on the quick path (segments of 64 bytes and more too): an escaped
            // value's length counts the bytes it stands for; escaped codes, numbers and control bytes go the exact way.
            "BGM+220+PO-1+9'NAD+BY+0042::9++" + new string('x', 34) + "?++Street+Boston++02110+US'",       // 35 after unescaping: valid
            "BGM+220+PO-1+9'NAD+BY+0042::9++" + new string('x', 35) + "?++Street+Boston++02110+US'",       // 36: too long
            "BGM+220+PO-1+9'NAD+BY+0042::9++" + new string('é', 33) + "?'?++Street+Boston++02110+US'",    // 35 Latin-1: valid
            "BGM+220+PO-1+9'NAD+BY+0042::9++" + new string('é', 34) + "?'?++Street+Boston++02110+US'",    // 36 Latin-1: too long
            "BGM+220+PO-1+9'NAD+BY+0042::9++Soci?\u000bte+Street+Boston++02110+US'",    // escaped control byte
            "BGM+220+PO-1+9'NAD+BY+0042::9++Soci\u0001té d?'Ép+Street+Boston++02110+US'", // control byte beside Latin-1
            "BGM+220+PO-1+9'NAD+B?Y+0042::9++Société d?'Épicerie+Street+Boston++02110+US'", // escaped code (BY: valid)
            "BGM+220+PO-1+9'NAD+B?Z+0042::9++Société d?'Épicerie+Street+Boston++02110+US'", // escaped code (BZ: not allowed)
            "BGM+220+PO-1+9'NAD+BY+00?:42::9++Société d?'Épicerie+Street+Boston++02110+US'", // escaped component in a component
            "BGM+220+PO-1+9'NAD+BY+0042::9:7++Société d?'Épicerie+Street+Boston++02110+US'", // one component too many
            "BGM+220+PO-1+9'NAD+BY+0042::9++Société d?'Épicerie:2:3:4:5:XYZW+Street+Boston++02110+US'", // C080-6 too long
            "BGM+220+PO-1+9'NAD+BY+0042::9++Nm+" + new string('S', 35) + "+Bos:ton++02110+US'",           // component in a simple element before byte 64 of a longer segment
            "BGM+220+PO-1+9'NAD+BY+0042::9++Nm+" + new string('S', 35) + "+Boston++02110+USAX'",          // too long past byte 64
            "BGM+220+PO-1+9'NAD+BY+0042::9++Nm+" + new string('S', 35) + "+Boston++02110:1+US'",          // component past byte 64 (mask unknown)
            "BGM+220+PO-1+9'NAD+BY+0042::9++Nm+" + new string('S', 35) + "+Boston++02110+US+X'",          // element beyond the definition past byte 64
            "BGM+220+PO-1+9'NAD+BY+0042::9++Nm+" + new string('S', 35) + "+Boston++02110+US'",            // valid, 72 bytes
            "BGM+220+PO-1+9'NAD+BY+0042::9++" + new string('A', 26) + ":" + new string('B', 25) + "+" + new string('S', 36) + "+Boston++02110+US'", // 36-byte street from byte 69: no separator bits of the first 64 bytes may be read into it
            "BGM+220+PO-1+9'QTY+21:4?84:PCE'",                  // escaped byte in a number
            "BGM+220+PO-1+9'QTY+21:484:P?CE'",                  // escaped byte in a coded component
            "BGM+220+PO-1+9'IMD+F++:::Item d?'Ésc " + new string('x', 40) + "'",           // escaped text in a long composite
        ];
        int issues = 0;
        foreach (var body in edifact)
        {
            string text = Una + body + "UNS+S'UNT+9+1'UNZ+1+7'";
            issues += Compare(Encoding.Latin1.GetBytes(text), body);

            // The same under UNOA (ASCII only: every non-ASCII byte an error) and UNOW (UTF-8: lengths in characters).
            issues += Compare(Encoding.Latin1.GetBytes(text.Replace("UNOC:3", "UNOA:3", StringComparison.Ordinal)), "UNOA " + body);
            issues += Compare(Encoding.UTF8.GetBytes(text.Replace("UNOC:3", "UNOW:3", StringComparison.Ordinal)), "UNOW " + body);
        }

        string isa = TestUtil.Isa(comp: ':');
        string[] x12 =
        [
            "BEG*00*SA*PO-1**20261124~N1*BY*Name*92~",              // paired 03/04 broken
            "BEG*00*SA*PO-1**20261124~N1*BY~",                      // at least one of 02/03
            "BEG*00*SA*PO-1**20261124~PID*F****~",                  // R 04 05
            "BEG*00*SA*PO-1**20261124~PID*F**08*ABC*Text~",         // C 04 03 fine, E?
            "BEG*00*XX*PO-1**20261131~",                            // bad code, bad date
            "BEG*00*SA*" + new string('P', 30) + "**20261124~",     // too long
            "BEG*00*SA*PO-1**20261124*x*y*z~",                      // too many elements
            "BEG*00*SA*PO:1**20261124~",                            // component separator in a simple element
            "BEG*00*SA*PO-1**20261124~PO1*1*2x*EA*9.5**VP*A~",      // bad numeric
            "BEG*00*SA*PO-1**20261124~PO1*1*2*EA*9.5**VP~",         // paired VP without id
            "BEG*00*SA*pö-1**20261124~",                            // non-ASCII
            "BEG*00*SA*PO-1**20261124~CTT*-1.5~",
            "BEG*00*SA*PO-1**20261124~N1*BY*Name*92*0042*~",        // empty element beyond the last one used
            "BEG*00*SA*PO-1**20261124~N1*BY*Name*92*0042*X*Y*Z~",   // elements beyond the definition
            "BEG*00*SA*PO-1**20261124~N1*BY*Name**0042~",           // paired 03/04 broken, the other way
            "BEG*00*SA~",                                           // mandatory elements absent at the end
            "BEG**SA*PO-1**20261124~",                              // mandatory element empty
            "BEG*00*SA*PO-1**20261124~CTT*+5~",                     // signed N0 (flat check: digit bit mask)
            "BEG*00*SA*PO-1**20261124~CTT*1.5~",                    // decimal mark in N0
            "BEG*00*SA*PO-1**20261124~CTT*.~",                      // no digit
            "BEG*00*SA*PO-1**20261124~CTT*x5~",                     // a letter where a sign may be
            "BEG*00*SA*PO-1**20261124~PO1*1*-2*EA*9,5**VP*A~",      // decimal comma in R, signed quantity
            "BEG*00*SA*PO-1**20261124~PO1*1*2*EA*9.5.1**VP*A~",     // two marks in R
            "BEG*00*SA*PO-1**20261124~PO1*1*2*EA*-*VP*A~",          // sign only
            "BEG*00*SA*PO-1**20261124~PO1*1*123456789012345678*EA*1**VP*A~",   // R too long (digits counted)
            "BEG*00*SA*PO-1**20261124~PO1*1*2*EA*9.5**VP*ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789*UP*A~", // 64 bytes and more
            "BEG*00*SA*PO-1**20261124~PO1*1*2*EA*9.5**VP*ABCDEFGHIJKLMNOPQRSTUVWXYZ012345*UP*A~",     // 63 bytes
            "BEG*00*SA*PO-1**20261124~N1*BY*Name*92*0042*1*2*3*4*5*6*7*8*9*10*11*12~",  // 16 elements and more
            "BEG*00*SA*PO-1**20261124~N1*BY*Name*92*0042************~",                 // 16 elements, the extra ones empty
            "BEG*00*SA*PO-1**20261124~N1*BY*Name*92*0042*************~",                // 17 elements, the extra ones empty
        ];
        // Faulty segments around the flat check's limits (63 bytes, 16 elements): the bad byte at offsets 58-67, the last
        // of 15-19 elements non-empty. Valid ones there would not show a check that reads or accepts too far.
        var limits = new List<string>();
        for (int pad = 12; pad <= 21; pad++)
        {
            limits.Add("BEG*00*SA*PO-1**20261124~PO1*" + new string('A', pad) + "*-1234567890123.45*EA*-7777777777777777.0x~");
        }

        for (int extra = 11; extra <= 15; extra++)
        {
            limits.Add("BEG*00*SA*PO-1**20261124~N1*BY*Name*92*0042" + new string('*', extra) + "X~");
        }

        x12 = [.. x12, .. limits];
        foreach (var body in x12)
        {
            string text = isa + "GS*PO*S*R*20261124*1200*1*X*004010~ST*850*0001~" + body + "CTT*1~SE*5*0001~GE*1*1~IEA*1*000000001~";
            issues += Compare(Encoding.UTF8.GetBytes(text), body);
        }

        Assert.True(issues >= edifact.Length + x12.Length, $"only {issues} issues for {edifact.Length + x12.Length} faulty inputs");
    }

    [Fact]
    public void A_non_ascii_value_never_matches_an_ascii_code()
    {
        // 0xC2 'X' packs, 7 bits a byte, to the same number as "BY"; it must still be a code value error.
        var head = Encoding.ASCII.GetBytes(TestUtil.Isa(comp: ':') + "GS*PO*S*R*20261124*1200*1*X*004010~ST*850*0001~BEG*00*SA*PO-1**20261124~N1*");
        var tail = Encoding.ASCII.GetBytes("*Name~CTT*1~SE*5*0001~GE*1*1~IEA*1*000000001~");
        byte[] input = [.. head, 0xC2, (byte)'X', .. tail];
        var all = EdiValidation.Validate(new MemoryStream(input)).AllIssues.ToList();
        Assert.True(all.Count(i => i.SegmentTag == "N1") == 1, string.Join("\n", all));
        var issue = all.Single(i => i.SegmentTag == "N1");
        Assert.Equal(EdiErrorKind.InvalidCodeValue, issue.Kind);
        Assert.Equal("N1", issue.SegmentTag);
        Assert.Equal(1, issue.ElementPosition);
        Assert.True(Compare(input, "non-ASCII code") > 0);
    }

    [Fact]
    public void Mutated_samples_give_the_same_issues_on_both_paths()
    {
        int seed = int.TryParse(Environment.GetEnvironmentVariable("EDI_FUZZ_SEED"), CultureInfo.InvariantCulture, out var sd) ? sd : Environment.TickCount;
        int rounds = int.TryParse(Environment.GetEnvironmentVariable("EDI_QUICK_ROUNDS"), CultureInfo.InvariantCulture, out var r) ? r : 400;
        var rnd = new Random(seed);
        var seeds = FuzzTests.Seeds();
        int issues = 0;
        for (int i = 0; i < rounds; i++)
        {
            var input = FuzzTests.Mutate(seeds[rnd.Next(seeds.Count)], rnd);
            try
            {
                issues += Compare(input, $"seed {seed} round {i} input {Convert.ToBase64String(input)}");
            }
            catch (EdiException)
            {
            }
        }

        Assert.True(issues > rounds, $"only {issues} issues over {rounds} mutated inputs (seed {seed})");
    }
}

/// <summary>The tokenizer's 32-byte pass and its exact path must cut the same segments, bounds, flags and positions.</summary>
public class TokenizerPathTests
{
    private static readonly EdiReaderOptions Limits = new() { MaxSegmentLength = 4096, MaxElementsPerSegment = 256, BufferSize = 1024 };

    private static List<string> Cut(byte[] input, bool exact)
    {
        var list = new List<string>();
        try
        {
            using var t = new EdiTokenizer(new MemoryStream(input), Limits) { ExactPathOnly = exact };
            while (t.ReadSegment())
            {
                // Flags: the vector pass knows them exactly, with release characters too (checked here against a scan of the
                // bytes); the exact path says "unknown" (all set) when it saw a release character.
                int flags = t.SegmentFlags;
                if (flags != EdiTokenizer.SegmentFlagsAll && (flags & EdiTokenizer.SegmentFlagRelease) != 0)
                {
                    Assert.Equal(ScanFlags(t.SegmentBytes, t.Delimiters), flags);
                    flags = EdiTokenizer.SegmentFlagsAll;
                }

                flags = flags == EdiTokenizer.SegmentFlagsAll ? -1 : flags;

                // The packed tag the reader and validator use is the tag's bytes, on either path.
                Assert.Equal(EdiTag.Pack(t.Tag), t.PackedTag);
                list.Add($"{Convert.ToHexString(t.SegmentBytes)} {string.Join(",", t.ElementBounds.ToArray())} @{t.SegmentOffset} {t.SegmentLine}:{t.SegmentColumn} #{t.SegmentCount} t{t.PackedTag} f{flags}");
            }
        }
        catch (EdiException ex)
        {
            list.Add("error " + ex.Message);
        }

        return list;
    }

    /// <summary>The flags of a segment with release characters, byte by byte: an escaped byte is data (never a separator), but counts as non-ASCII.</summary>
    private static int ScanFlags(ReadOnlySpan<byte> seg, EdiDelimiters d)
    {
        int flags = 0;
        for (int i = 0; i < seg.Length; i++)
        {
            byte b = seg[i];
            if (b == d.Release && i + 1 < seg.Length)
            {
                flags |= EdiTokenizer.SegmentFlagRelease;
                b = seg[++i];
            }
            else if (b == d.Component || (d.Repetition != 0 && b == d.Repetition))
            {
                flags |= EdiTokenizer.SegmentFlagSpecial;
            }

            if ((byte)(b - 0x20) > 0x5E)
            {
                flags |= EdiTokenizer.SegmentFlagNotPlain;
            }
        }

        return flags;
    }

    [Fact]
    public void Vector_pass_and_exact_path_cut_release_characters_alike()
    {
        // The vector pass takes release characters itself: the byte after each is data, also across its 32-byte blocks.
        // A release character before every escapable byte at every position of a segment of up to three blocks, "??" and
        // an escaped VT included, must give the exact path's segments, bounds, lines, columns and flags.
        var sb = new StringBuilder("UNA:+.? 'UNB+UNOC:3+S:14+R:14+261124:1200+7'UNH+1+ORDERS:D:96A:UN'\n");
        int made = 0;
        foreach (char escaped in "+:'?x\u000b*\u00e9")
        {
            for (int at = 4; at < 90; at++)
            {
                var text = new StringBuilder("FTX+AAA+++");
                while (text.Length < 96)
                {
                    text.Append(text.Length % 7 == 0 ? ':' : text.Length % 11 == 0 ? '+' : (char)('a' + (text.Length % 26)));
                }

                text.Insert(at, "?" + escaped);
                sb.Append(text).Append("'\n");
                sb.Append(text.ToString(0, at + 2)).Append('\'');  // ends right after the escaped byte
                made += 2;
            }
        }

        sb.Append("UNT+").Append(made + 2).Append("+1'UNZ+1+7'");
        var input = Encoding.Latin1.GetBytes(sb.ToString());
        var fast = Cut(input, exact: false);
        var exact = Cut(input, exact: true);
        Assert.True(fast.Count > made, $"{fast.Count} segments cut of {made}: {fast.LastOrDefault()}");
        Assert.Equal(exact, fast);
    }

    [Fact]
    public void Vector_pass_and_exact_path_cut_samples_and_mutations_alike()
    {
        int seed = int.TryParse(Environment.GetEnvironmentVariable("EDI_FUZZ_SEED"), System.Globalization.CultureInfo.InvariantCulture, out var sd) ? sd : Environment.TickCount;
        var rnd = new Random(seed);
        var seeds = FuzzTests.Seeds();
        int segments = 0;
        for (int i = 0; i < 300; i++)
        {
            var input = i < seeds.Count ? seeds[i] : FuzzTests.Mutate(seeds[rnd.Next(seeds.Count)], rnd);
            var fast = Cut(input, exact: false);
            var exact = Cut(input, exact: true);
            for (int k = 0; k < Math.Min(fast.Count, exact.Count); k++)
            {
                // The exact path reports unknown flags only with a release character; otherwise both must agree.
                string a = fast[k], b = exact[k];
                if (b.EndsWith(" f-1", StringComparison.Ordinal))
                {
                    a = a[..a.LastIndexOf(" f", StringComparison.Ordinal)];
                    b = b[..b.LastIndexOf(" f", StringComparison.Ordinal)];
                }

                Assert.True(a == b, $"seed {seed} input {i} segment {k}:\nfast  {fast[k]}\nexact {exact[k]}");
            }

            Assert.Equal(exact.Count, fast.Count);
            segments += fast.Count;
        }

        Assert.True(segments > 1000, $"{segments} segments compared");
    }
}
