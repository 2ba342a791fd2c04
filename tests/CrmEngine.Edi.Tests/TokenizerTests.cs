using System.Text;

namespace CrmEngine.Edi.Tests;

public class TokenizerTests
{
    private static List<string> Segments(byte[] data, out EdiDelimiters d)
    {
        using var t = new EdiTokenizer(new MemoryStream(data), new EdiReaderOptions { BufferSize = 1024 });
        var list = new List<string>();
        d = default;
        while (t.ReadSegment())
        {
            d = t.Delimiters;
            var parts = new List<string>();
            for (int i = 0; i < t.ElementCount; i++)
            {
                parts.Add(Encoding.Latin1.GetString(t.Element(i)));
            }

            list.Add(string.Join("|", parts));
        }

        return list;
    }

    [Fact]
    public void Isa_fixed_positions_give_all_four_x12_delimiters_from_00402_on()
    {
        string isa = TestUtil.Isa(version: "00501", elem: '|', comp: '\\', term: '\n', rep: '^');
        var segs = Segments(Encoding.ASCII.GetBytes(isa + "GS|PO|A|B|20261124|1200|1|X|005010\nGE|0|1\nIEA|1|000000001\n"), out var d);
        Assert.Equal((byte)'|', d.Element);
        Assert.Equal((byte)'\\', d.Component);
        Assert.Equal((byte)'^', d.Repetition);
        Assert.Equal((byte)'\n', d.Segment);
        Assert.Equal(4, segs.Count);
        Assert.Equal("GE|0|1", segs[2]);
    }

    [Fact]
    public void Isa_before_00402_has_no_repetition_separator()
    {
        var segs = Segments(Encoding.ASCII.GetBytes(TestUtil.Isa() + "IEA*0*000000001~"), out var d);
        Assert.Equal(0, d.Repetition);
        Assert.Equal(2, segs.Count);
    }

    [Fact]
    public void Una_defines_delimiters_and_release_character_escapes_them()
    {
        var segs = Segments(Encoding.ASCII.GetBytes("UNA=*.?^~UNB*UNOA=4*S*R*261124=1200*1~FTX*AAI***a?*b?=c?~d??~UNZ*0*1~"), out var d);
        Assert.Equal((byte)'*', d.Element);
        Assert.Equal((byte)'=', d.Component);
        Assert.Equal((byte)'^', d.Repetition);
        Assert.Equal((byte)'?', d.Release);
        Assert.Equal("FTX|AAI|||a?*b?=c?~d??", segs[1]);
    }

    [Fact]
    public void Crlf_after_terminators_and_80_column_wrapping_are_ignored()
    {
        string flat = TestUtil.Isa() + "GS*PO*SENDER*RECEIVER*20261124*1200*1*X*004010~ST*850*0001~BEG*00*SA*PO-LONG-NUMBER-1**20261124~SE*3*0001~GE*1*1~IEA*1*000000001~";
        var wrapped = new StringBuilder();
        for (int i = 0; i < flat.Length; i += 80)
        {
            wrapped.Append(flat.AsSpan(i, Math.Min(80, flat.Length - i))).Append("\r\n");
        }

        var a = Segments(Encoding.ASCII.GetBytes(flat), out _);
        var b = Segments(Encoding.ASCII.GetBytes(wrapped.ToString()), out _);
        var c = Segments(Encoding.ASCII.GetBytes(flat.Replace("~", "~\r\n", StringComparison.Ordinal)), out _);
        Assert.Equal(a, b);
        Assert.Equal(a, c);
        Assert.Equal("BEG|00|SA|PO-LONG-NUMBER-1||20261124", a[3]);
    }

    [Fact]
    public void A_wrap_right_after_a_release_character_is_a_wrap_and_the_release_applies_past_it()
    {
        // Files wrapped at a fixed width break lines anywhere, also between "?" and the byte it escapes. The line break
        // is no data: every width, with LF and with CRLF, must cut exactly the segments of the unwrapped text.
        string flat = "UNA:+.? 'UNB+UNOC:3+S:14+R:14+261124:1200+7'UNH+1+ORDERS:D:96A:UN'" +
            "FTX+AAI+++Door 3?+ramp B?:left?'s side??done+x'NAD+BY+++A?+B?:C?'D??E+Street 1?+2'UNT+4+1'UNZ+1+7'";
        var expected = Segments(Encoding.Latin1.GetBytes(flat), out _);
        Assert.Equal("FTX|AAI|||Door 3?+ramp B?:left?'s side??done|x", expected[2]);
        int afterRelease = 0;
        foreach (var lineBreak in new[] { "\n", "\r\n" })
        {
            for (int width = 10; width <= 70; width++)   // from 10: the 9-byte UNA stays whole
            {
                var wrapped = new StringBuilder();
                for (int i = 0; i < flat.Length; i += width)
                {
                    wrapped.Append(flat.AsSpan(i, Math.Min(width, flat.Length - i))).Append(lineBreak);
                    afterRelease += i + width < flat.Length && flat[i + width - 1] == '?' ? 1 : 0;
                }

                Assert.Equal(expected, Segments(Encoding.Latin1.GetBytes(wrapped.ToString()), out _));
            }
        }

        Assert.True(afterRelease > 20, $"only {afterRelease} wraps fell right after a release character");
    }

    [Fact]
    public void Several_interchanges_with_different_delimiters_in_one_stream()
    {
        string text = "UNB+UNOA:3+S+R+261124:1200+1'UNZ+0+1'\n" + TestUtil.Isa(elem: '|', term: '\n') + "IEA|0|000000001\nUNA:*.? 'UNB*UNOA:3*S*R*261124:1200*2'UNZ*0*2'";
        var segs = Segments(Encoding.ASCII.GetBytes(text), out _);
        Assert.Equal(6, segs.Count);
        Assert.StartsWith("ISA|00", segs[2], StringComparison.Ordinal);
        Assert.Equal("UNB|UNOA:3|S|R|261124:1200|2", segs[4]);
    }

    [Theory]
    [InlineData("", "empty input")]
    [InlineData("  \r\n ", "empty input")]
    [InlineData("Hello, this is a CSV,file\n", "not EDI")]
    [InlineData("ISA*00*   ", "truncated ISA")]
    [InlineData("UNB+UNOA:3+S+R+261124:1200+1'UNH+1+ORDERS:D:96A:UN'BGM+220+PO", "truncated input")]
    public void Unreadable_input_throws_EdiException_with_position(string text, string expected)
    {
        var ex = Assert.Throws<EdiException>(() => Segments(Encoding.ASCII.GetBytes(text), out _));
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
        Assert.True(ex.Line >= 1);
        Assert.True(ex.ByteOffset >= 0);
    }

    [Fact]
    public void Malformed_isa_names_the_header_position()
    {
        string isa = TestUtil.Isa().Remove(20, 1).Insert(20, "#");
        var ex = Assert.Throws<EdiException>(() => Segments(Encoding.ASCII.GetBytes(isa + "IEA*0*000000001~"), out _));
        Assert.Contains("position 21", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Segment_longer_than_limit_is_an_error_not_unbounded_growth()
    {
        var big = TestUtil.Isa() + "GS*" + new string('A', 300_000) + "~";
        using var t = new EdiTokenizer(new MemoryStream(Encoding.ASCII.GetBytes(big)), new EdiReaderOptions { MaxSegmentLength = 4096, BufferSize = 1024 });
        Assert.True(t.ReadSegment());
        var ex = Assert.Throws<EdiException>(() => t.ReadSegment());
        Assert.Contains("longer than 4096", ex.Message, StringComparison.Ordinal);
    }
}
