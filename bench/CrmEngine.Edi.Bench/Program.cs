using System.Diagnostics;
using System.Globalization;
using CrmEngine.Edi;

// Usage: dotnet run -c Release --project bench/CrmEngine.Edi.Bench [sizeMB=100] [file]
// Prints wall-clock MB/s and MB per CPU-second (process CPU time), because the machine may be shared.
int sizeMb = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 100;
string path = args.Length > 1 ? args[1] : Path.Combine(Path.GetTempPath(), $"edi-bench-{sizeMb}mb.edi");
long target = sizeMb * 1024L * 1024L;
var proc = Process.GetCurrentProcess();

Console.WriteLine($"EDI bench: {sizeMb} MB target, file {path}, {Environment.ProcessorCount} cores, load average {LoadAverage()}");
int rounds = int.TryParse(Environment.GetEnvironmentVariable("EDI_BENCH_ROUNDS"), CultureInfo.InvariantCulture, out int rr) ? Math.Max(2, rr) : 3;
var cpuRatios = new List<double>();
var wallRatios = new List<double>();
var validateCpu = new List<double>();
var validateWall = new List<double>();

// ---- write: typed documents -> X12 850 and EDIFACT ORDERS interchanges ------------------------
long docs = 0;
var rnd = new Random(7);
var x12Batch = Enumerable.Range(0, 500).Select(i => MakeOrder(true, i, rnd)).ToList();
var edifactBatch = Enumerable.Range(0, 500).Select(i => MakeOrder(false, i, rnd)).ToList();
(double Wall, double Cpu) WriteOnce() => Measure(() =>
{
    docs = 0;
    using var fs = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
    var numbers = new EdiControlNumberSequence();
    var x12 = new EdiWriterOptions { Standard = EdiStandard.X12, SenderId = "BUYER", ReceiverId = "SELLER", ControlNumbers = numbers, SegmentSuffix = "\n" };
    var edifact = new EdiWriterOptions { Standard = EdiStandard.Edifact, CharacterSet = "UNOC", SenderId = "5412345000013", SenderQualifier = "14", ReceiverId = "4012345000009", ReceiverQualifier = "14", ControlNumbers = numbers, SegmentSuffix = "\n" };
    while (fs.Position < target)
    {
        bool isX12 = (docs / 500) % 2 == 0;
        EdiDocuments.WriteInterchange(fs, isX12 ? x12 : edifact, isX12 ? x12Batch : edifactBatch);
        docs += 500;
    }
});
WriteOnce(); // warm-up (JIT)
var (wall, cpu) = WriteOnce();
long size = new FileInfo(path).Length;
double mb = size / (1024.0 * 1024.0);
Console.WriteLine($"write typed docs -> EDI (2nd run): {docs:N0} orders (X12 850 + EDIFACT ORDERS), {mb:F1} MB: {Rate(wall, cpu)}");

for (int round = 1; round <= rounds; round++)
{
    Console.WriteLine($"-- round {round} (round 1 includes JIT and cold cache)");

    long terminators = 0;
    var buf = new byte[1 << 20];
    var (w0, c0) = Measure(() =>
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
        int n;
        while ((n = fs.Read(buf, 0, buf.Length)) > 0)
        {
            var span = buf.AsSpan(0, n);
            terminators += span.Count((byte)'~') + span.Count((byte)'\'');
        }
    });
    Console.WriteLine($"baseline byte scan, vectorized (Span.Count): {terminators:N0} terminators  {Rate(w0, c0)}");

    long loopCount = 0;
    var (wl, cl) = Measure(() =>
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
        int n;
        while ((n = fs.Read(buf, 0, buf.Length)) > 0)
        {
            for (int i = 0; i < n; i++)
            {
                byte b = buf[i];
                if (b == (byte)'~' || b == (byte)'\'')
                {
                    loopCount++;
                }
            }
        }
    });
    Console.WriteLine($"baseline byte scan, byte-by-byte loop:      {loopCount:N0} terminators  {Rate(wl, cl)}");

    long segments = 0;
    var (w1, c1) = Measure(() =>
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
        using var tok = new EdiTokenizer(fs);
        while (tok.ReadSegment())
        {
            segments++;
        }
    });
    Console.WriteLine($"tokenize:                {segments:N0} segments  {Rate(w1, c1)}  = {cl / c1:F2}x byte-loop scan (cpu)");

    long sets = 0;
    var (wr, cr) = Measure(() =>
    {
        using var reader = EdiStreamReader.Open(path);
        EdiItemKind k;
        while ((k = reader.Read()) != EdiItemKind.None)
        {
            if (k == EdiItemKind.TransactionSet)
            {
                sets++;
            }
        }
    });
    Console.WriteLine($"read (tokenize + envelopes, no content validation): {sets:N0} sets  {Rate(wr, cr)}  = {cl / cr:F2}x byte-loop scan (cpu)");

    EdiValidationReport? report = null;
    long before = GC.GetAllocatedBytesForCurrentThread();
    var (w2, c2) = Measure(() => report = EdiValidation.ValidateFile(path, new EdiValidationOptions { MaxRetainedSets = 1000 }));
    long alloc = GC.GetAllocatedBytesForCurrentThread() - before;
    Console.WriteLine($"parse+validate (envelopes, structure, elements): {report!.SetCount:N0} sets, {report.AllIssues.Count()} issues  {Rate(w2, c2)}  = {c0 / c2:F2}x vectorized scan, {cl / c2:F2}x byte-loop scan (cpu), {wl / w2:F2}x (wall); allocated {alloc / (1024.0 * 1024.0):F1} MB = {alloc / (double)report.SetCount:F0} bytes per set, {alloc / (double)segments:F1} per segment; working set {Environment.WorkingSet / (1024 * 1024)} MB");
    if (round > 1)
    {
        cpuRatios.Add(cl / c2);
        wallRatios.Add(wl / w2);
        validateCpu.Add(mb / c2);
        validateWall.Add(mb / w2);
    }
}

// Single thread throughout: the figures above are one core's work, CPU time and wall clock.
Console.WriteLine($"-- parse+validate over rounds 2-{rounds} (single thread): {Spread(validateCpu, "F0")} MB/cpu-s, {Spread(validateWall, "F0")} MB/s wall; vs byte-by-byte loop {Spread(cpuRatios, "F3")}x (cpu), {Spread(wallRatios, "F3")}x (wall); load average {LoadAverage()}");

if (Environment.GetEnvironmentVariable("EDI_BENCH_KEEP") != "1")
{
    File.Delete(path);
}

// ---- bounded memory: a generated stream of EDI_BENCH_STREAM_MB (default 1024) MB, never held as a whole ------------
int streamMb = int.TryParse(Environment.GetEnvironmentVariable("EDI_BENCH_STREAM_MB"), CultureInfo.InvariantCulture, out int smb) ? smb : 1024;
if (streamMb > 0)
{
    var gen = new GeneratedOrders(streamMb * 1024L * 1024L);
    var heap = new List<long>();
    long seenSets = 0;
    EdiValidationReport? big = null;
    var (ws, cs) = Measure(() => big = EdiValidation.Validate(gen, new EdiValidationOptions { MaxRetainedSets = 1000 }, _ =>
    {
        if (++seenSets % 200_000 == 0)
        {
            heap.Add(GC.GetTotalMemory(false));
        }
    }));
    proc.Refresh();
    double gb = gen.Produced / (1024.0 * 1024.0);
    Console.WriteLine($"-- bounded memory: generated stream of {gb:F0} MB ({big!.SetCount:N0} X12 850 sets in {big.Interchanges.Count:N0} interchanges, {big.AllIssues.Count()} issues), never in memory as a whole");
    Console.WriteLine($"   {ws:F2} s wall = {gb / ws:F1} MB/s | {cs:F2} s cpu = {gb / cs:F1} MB/cpu-s (includes generating the stream)");
    Console.WriteLine($"   managed heap at each 200,000 sets: {string.Join(" ", heap.Select(h => (h / (1024 * 1024)).ToString(CultureInfo.InvariantCulture)))} MB; peak working set of the process {proc.PeakWorkingSet64 / (1024 * 1024)} MB");
}

return 0;

static string Spread(List<double> values, string format)
{
    var v = values.Order().ToList();
    return $"min {v[0].ToString(format, CultureInfo.InvariantCulture)} median {v[v.Count / 2].ToString(format, CultureInfo.InvariantCulture)} max {v[^1].ToString(format, CultureInfo.InvariantCulture)}";
}

static string LoadAverage()
{
    try
    {
        return string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
    }
    catch (IOException)
    {
        return "n/a";
    }
}

string Rate(double wallSeconds, double cpuSeconds)
    => $"{wallSeconds:F2} s wall = {mb / wallSeconds,7:F1} MB/s | {cpuSeconds:F2} s cpu = {mb / cpuSeconds,7:F1} MB/cpu-s";

(double Wall, double Cpu) Measure(Action action)
{
    proc.Refresh();
    var cpu0 = proc.TotalProcessorTime;
    var sw = Stopwatch.StartNew();
    action();
    sw.Stop();
    proc.Refresh();
    return (sw.Elapsed.TotalSeconds, Math.Max(1e-3, (proc.TotalProcessorTime - cpu0).TotalSeconds));
}

static EdiBusinessDocument MakeOrder(bool x12, long n, Random rnd)
{
    var d = new EdiBusinessDocument
    {
        Type = EdiDocumentType.PurchaseOrder,
        Standard = x12 ? EdiStandard.X12 : EdiStandard.Edifact,
        Version = x12 ? "004010" : "D96A",
        Number = "PO-" + n.ToString(CultureInfo.InvariantCulture),
        Date = "20261124",
        Currency = x12 ? "USD" : "EUR",
        Purpose = x12 ? "00" : "9",
        Status = x12 ? "SA" : "",
    };
    d.Dates.Add(new EdiDate(x12 ? "002" : "2", "20261201"));
    d.Parties.Add(new EdiParty { Role = "BY", Name = x12 ? "Acme Retail Corp" : "Société Générale d'Épicerie", IdQualifier = x12 ? "92" : "9", Id = "0042", Street = "12 Harbour Street", City = "Boston", PostalCode = "02110", Country = "US" });
    d.Parties.Add(new EdiParty { Role = "ST", Name = "Distribution Center " + (n % 17).ToString(CultureInfo.InvariantCulture), IdQualifier = x12 ? "92" : "9", Id = "0043" });
    int lines = rnd.Next(1, 12);
    decimal total = 0;
    for (int i = 1; i <= lines; i++)
    {
        var l = new EdiLine { LineNumber = i.ToString(CultureInfo.InvariantCulture), Quantity = rnd.Next(1, 500), Unit = x12 ? "EA" : "PCE", UnitPrice = rnd.Next(100, 99999) / 100m, Description = "Item description " + i.ToString(CultureInfo.InvariantCulture) };
        l.ItemIds.Add(new EdiItemId(x12 ? "VP" : "EN", "40008621" + rnd.Next(10000, 99999).ToString(CultureInfo.InvariantCulture)));
        l.ItemIds.Add(new EdiItemId(x12 ? "UP" : "SA", "ART-" + rnd.Next(1000, 9999).ToString(CultureInfo.InvariantCulture)));
        total += l.Quantity!.Value * l.UnitPrice!.Value;
        d.Lines.Add(l);
    }

    d.TotalAmount = total;
    return d;
}

/// <summary>X12 850s made on the fly, 500 to an interchange, until <c>limit</c> bytes: a file that is never in memory.</summary>
sealed class GeneratedOrders(long limit) : Stream
{
    private static readonly byte[] SetTemplate = System.Text.Encoding.ASCII.GetBytes(
        "ST*850*#########~\nBEG*00*SA*PO-#########**20261124~\nDTM*002*20261201~\nN1*BY*Acme Retail Corp*92*0042~\nN3*12 Harbour Street~\nN4*Boston**02110*US~\n"
        + "PO1*1*435*EA*661.27**VP*4000862114703*UP*ART-4297~\nPID*F****Item description 1~\nPO1*2*12*EA*3.5**VP*4000862195856*UP*ART-8591~\nPID*F****Item description 2~\n"
        + "CTT*2~\nSE*12*#########~\n");

    private readonly byte[] _pending = new byte[64 * 1024];
    private int _offset;
    private int _length;
    private long _interchange;
    private int _inInterchange;
    private bool _closed = true;
    private bool _done;

    public long Produced { get; private set; }

    public override int Read(byte[] buffer, int offset, int count)
    {
        if (_offset == _length && !Refill())
        {
            return 0;
        }

        int n = Math.Min(count, _length - _offset);
        Array.Copy(_pending, _offset, buffer, offset, n);
        _offset += n;
        Produced += n;
        return n;
    }

    private bool Refill()
    {
        if (_done)
        {
            return false;
        }

        _offset = 0;
        _length = 0;
        if (_closed)
        {
            _interchange++;
            _inInterchange = 0;
            _closed = false;
            string c = _interchange.ToString("D9", CultureInfo.InvariantCulture);
            Append($"ISA*00*          *00*          *ZZ*BUYER          *ZZ*SELLER         *261124*1200*U*00401*{c}*0*P*:~\nGS*PO*BUYER*SELLER*20261124*1200*{_interchange}*X*004010~\n");
        }

        while (_length + SetTemplate.Length < _pending.Length && _inInterchange < 500 && Produced + _length < limit)
        {
            _inInterchange++;
            int at = _length;
            SetTemplate.CopyTo(_pending, at);
            _length += SetTemplate.Length;
            for (int i = at; i < _length; i++)
            {
                if (_pending[i] == (byte)'#')
                {
                    _inInterchange.TryFormat(_pending.AsSpan(i, 9), out _, "D9", CultureInfo.InvariantCulture);
                    i += 8;
                }
            }
        }

        if (_inInterchange == 500 || Produced + _length >= limit)
        {
            Append($"GE*{_inInterchange}*{_interchange}~\nIEA*1*{_interchange:D9}~\n");
            _closed = true;
            _done = Produced + _length >= limit;
        }

        return _length > 0;
    }

    private void Append(string text) => _length += System.Text.Encoding.ASCII.GetBytes(text, 0, text.Length, _pending, _length);

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
