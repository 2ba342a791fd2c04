using System.Text;

namespace CrmEngine.Edi.Tests;

public class StreamingTests
{
    /// <summary>An endless-looking X12 file produced on the fly: memory use must not depend on its size.</summary>
    private sealed class GeneratedX12 : Stream
    {
        private readonly int _sets;
        private int _next;
        private byte[] _pending;
        private int _offset;
        private bool _trailerDone;

        public GeneratedX12(int sets)
        {
            _sets = sets;
            _pending = Encoding.ASCII.GetBytes(TestUtil.Isa() + "GS*PO*S*R*20261124*1200*1*X*004010~");
        }

        public long Produced { get; private set; }

        public override int Read(byte[] buffer, int offset, int count)
        {
            if (_offset == _pending.Length)
            {
                if (_next < _sets)
                {
                    _next++;
                    string c = _next.ToString("D9", System.Globalization.CultureInfo.InvariantCulture);
                    _pending = Encoding.ASCII.GetBytes($"ST*850*{c}~BEG*00*SA*PO-{c}**20261124~N1*BY*Buyer {c}*92*0042~PO1*1*10*EA*12.5**VP*WID-100~PID*F****Widget~PO1*2*1*EA*3**VP*GAD~CTT*2~SE*8*{c}~\n");
                }
                else if (!_trailerDone)
                {
                    _trailerDone = true;
                    _pending = Encoding.ASCII.GetBytes($"GE*{_sets}*1~IEA*1*000000001~");
                }
                else
                {
                    return 0;
                }

                _offset = 0;
            }

            int n = Math.Min(count, _pending.Length - _offset);
            Array.Copy(_pending, _offset, buffer, offset, n);
            _offset += n;
            Produced += n;
            return n;
        }

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    [Fact]
    public void Memory_stays_flat_while_a_large_stream_is_validated()
    {
        var input = new GeneratedX12(100_000);
        long peak = 0;
        int seen = 0;
        GC.Collect();
        long baseline = GC.GetTotalMemory(true);
        var report = EdiValidation.Validate(input, new EdiValidationOptions { MaxRetainedSets = 1000 }, _ =>
        {
            if (++seen % 10_000 == 0)
            {
                peak = Math.Max(peak, GC.GetTotalMemory(false) - baseline);
            }
        });
        Assert.Equal(100_000, report.SetCount);
        Assert.True(input.Produced > 15_000_000, $"only {input.Produced} bytes produced");
        Assert.Empty(report.AllIssues);
        Assert.True(report.Truncated);
        // The report keeps 1000 sets; the rest of the ~17 MB went through a reused arena.
        Assert.True(peak < 48L * 1024 * 1024, $"managed heap grew by {peak / 1024 / 1024} MB while streaming {input.Produced / 1024 / 1024} MB");
    }

    [Fact]
    public void Edifact_level_b_defaults_and_utf8_charsets_are_read()
    {
        var levelB = Encoding.ASCII.GetBytes("UNB\u001DUNOB\u001F3\u001DS\u001DR\u001D261124\u001F1200\u001D1\u001CUNH\u001D1\u001DORDERS\u001FD\u001F96A\u001FUN\u001CBGM\u001D220\u001DPO-1\u001D9\u001CDTM\u001D137\u001F20261124\u001F102\u001CUNS\u001DS\u001CUNT\u001D5\u001D1\u001CUNZ\u001D1\u001D1\u001C");
        var report = EdiValidation.Validate(new MemoryStream(levelB));
        Assert.Equal("", string.Join("\n", report.AllIssues));
        Assert.Equal(1, report.SetCount);

        foreach (var cs in new[] { "UNOW", "UNOY" })
        {
            var text = $"UNA:+.? 'UNB+{cs}:3+S+R+261124:1200+1'UNH+1+ORDERS:D:96A:UN'BGM+220+PO-1+9'DTM+137:20261124:102'NAD+BY+++Łódź Ørsted Straße'UNS+S'UNT+6+1'UNZ+1+1'";
            var docs = EdiDocuments.ReadAll(new MemoryStream(Encoding.UTF8.GetBytes(text)));
            Assert.Equal("Łódź Ørsted Straße", Assert.Single(docs).Parties[0].Name);
        }

        // UNOA/UNOB do not allow bytes above 0x7F.
        var bad = EdiValidation.Validate(new MemoryStream(Encoding.UTF8.GetBytes("UNB+UNOA:3+S+R+261124:1200+1'UNH+1+ORDERS:D:96A:UN'BGM+220+PÖ-1+9'DTM+137:20261124:102'UNS+S'UNT+5+1'UNZ+1+1'")));
        var issue = Assert.Single(bad.AllIssues);
        Assert.Equal(EdiErrorKind.InvalidCharacter, issue.Kind);
        Assert.Equal("BGM", issue.SegmentTag);
    }
}
