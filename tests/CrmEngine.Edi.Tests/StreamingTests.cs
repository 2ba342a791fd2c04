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

    /// <summary>
    /// The issue's bounded-memory claim: a generated stream (never held in memory as a whole) of EDI_STREAM_MB megabytes,
    /// 200 by default, is validated while the managed heap is measured after a full collection at ten points. The heap
    /// must not grow with what was read: the last measurement may exceed the first by a few megabytes at most, whatever
    /// the size. The bench does the same with 1 GB.
    /// </summary>
    [Fact]
    public void Memory_stays_flat_while_a_large_stream_is_validated()
    {
        int megabytes = int.TryParse(Environment.GetEnvironmentVariable("EDI_STREAM_MB"), System.Globalization.CultureInfo.InvariantCulture, out int mb) ? mb : 200;
        const int BytesPerSet = 164; // what GeneratedX12 writes for one set
        int sets = (int)(megabytes * 1024L * 1024L / BytesPerSet);
        var input = new GeneratedX12(sets);
        var heap = new List<long>();
        int seen = 0;
        int every = Math.Max(1, sets / 10);
        var report = EdiValidation.Validate(input, new EdiValidationOptions { MaxRetainedSets = 1000 }, _ =>
        {
            if (++seen % every == 0)
            {
                heap.Add(GC.GetTotalMemory(forceFullCollection: true));
            }
        });

        Assert.Equal(sets, report.SetCount);
        Assert.True(input.Produced >= megabytes * 1024L * 1024L * 9 / 10, $"only {input.Produced} bytes produced");
        Assert.Empty(report.AllIssues);
        Assert.True(report.Truncated);
        Assert.True(heap.Count >= 9, $"{heap.Count} measurements");
        long growth = heap[^1] - heap[0];
        Assert.True(growth < 8L * 1024 * 1024, $"managed heap grew by {growth / 1024} KB between the first and the last tenth of {input.Produced / 1024 / 1024} MB: {string.Join(", ", heap.Select(h => h / 1024))} KB");
        Assert.True(heap.Max() < 96L * 1024 * 1024, $"managed heap reached {heap.Max() / 1024 / 1024} MB");
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

public class NumberRunsTests
{
    [Fact]
    public void Control_number_runs_answer_like_a_hash_set_and_stay_one_run_for_consecutive_numbers()
    {
        var rnd = new Random(11);
        for (int round = 0; round < 50; round++)
        {
            var runs = new EdiNumberRuns();
            var reference = new HashSet<long>();
            long next = rnd.Next(0, 100);
            for (int i = 0; i < 2000; i++)
            {
                long n = rnd.Next(4) switch
                {
                    0 => rnd.Next(0, 300),                // anywhere, often a duplicate
                    1 => next - rnd.Next(0, 5),           // just behind
                    _ => next++,                          // consecutive
                };
                Assert.Equal(reference.Add(n), runs.Add(n));
            }
        }

        var seq = new EdiNumberRuns();
        for (long n = 1; n <= 1_000_000; n++)
        {
            Assert.True(seq.Add(n));
        }

        Assert.False(seq.Add(500_000));
        Assert.Equal(1, seq.RunCount);
    }
}
