using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace CrmEngine.Edi.Tests;

/// <summary>
/// Mutates valid samples for a bounded time (EDI_FUZZ_SECONDS, default 3) and runs the whole pipeline:
/// only <see cref="EdiException"/> may escape, each run ends within a deadline, allocation stays bounded.
/// EDI_FUZZ_SEED reproduces a run.
/// </summary>
public class FuzzTests
{
    private static readonly EdiReaderOptions Limits = new() { MaxSegmentLength = 4096, MaxSegmentsPerSet = 5000, MaxElementsPerSegment = 256, BufferSize = 1024 };

    internal static List<byte[]> Seeds()
    {
        var seeds = Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "samples"), "*.edi")
            .Select(File.ReadAllBytes).Where(b => b.Length > 0 && b.Length < 200_000).ToList();
        seeds.Add(Encoding.ASCII.GetBytes(TestUtil.Isa() + "GS*SH*S*R*20261124*1200*5*X*004010~ST*856*0001~BSN*00*SHIP1*20261124*1200~HL*1**S~HL*2*1*O~PRF*PO-1~HL*3*2*I~LIN**VP*A~SN1**2*EA~CTT*3~SE*10*0001~GE*1*5~IEA*1*000000001~"));
        return seeds;
    }

    private static void Pipeline(byte[] input)
    {
        var report = EdiValidation.Validate(new MemoryStream(input), new EdiValidationOptions { Reader = Limits }, set => EdiDocuments.FromSet(set));
        _ = report.AllIssues.Select(i => i.ToString()).Count();
        using var ack = new MemoryStream();
        EdiAcknowledgements.Write(report, ack);
        if (ack.Length > 0)
        {
            EdiAckReader.Read(new MemoryStream(ack.ToArray()), Limits);
        }
    }

    internal static byte[] Mutate(byte[] src, Random rnd)
    {
        var data = new List<byte>(src);
        int ops = rnd.Next(1, 4);
        for (int k = 0; k < ops && data.Count > 0; k++)
        {
            int pos = rnd.Next(data.Count);
            switch (rnd.Next(8))
            {
                case 0: // flip bytes
                    for (int i = 0; i < rnd.Next(1, 6); i++)
                    {
                        int p = rnd.Next(data.Count);
                        data[p] = (byte)(data[p] ^ (1 << rnd.Next(8)));
                    }

                    break;
                case 1: // random byte
                    data[pos] = (byte)rnd.Next(256);
                    break;
                case 2: // truncate
                    data.RemoveRange(pos, data.Count - pos);
                    break;
                case 3: // drop a segment
                case 4: // duplicate a segment
                {
                    byte term = Terminator(src);
                    int start = data.LastIndexOf(term, pos) + 1;
                    int end = data.IndexOf(term, pos);
                    if (end < 0)
                    {
                        break;
                    }

                    var seg = data.GetRange(start, end - start + 1);
                    if (rnd.Next(2) == 0)
                    {
                        data.RemoveRange(start, seg.Count);
                    }
                    else
                    {
                        data.InsertRange(end + 1, Enumerable.Repeat(seg, rnd.Next(1, 50)).SelectMany(x => x));
                    }

                    break;
                }

                case 5: // swap delimiters
                {
                    byte a = data[rnd.Next(data.Count)], b = "*~:^+'?\n\r|"u8[rnd.Next(10)];
                    for (int i = 0; i < data.Count; i++)
                    {
                        if (data[i] == a)
                        {
                            data[i] = b;
                        }
                        else if (data[i] == b)
                        {
                            data[i] = a;
                        }
                    }

                    break;
                }

                case 6: // insert junk / line breaks
                    data.InsertRange(pos, Enumerable.Range(0, rnd.Next(1, 20)).Select(_ => rnd.Next(4) == 0 ? (byte)'\n' : (byte)rnd.Next(256)));
                    break;
                default: // huge element
                    data.InsertRange(pos, Enumerable.Repeat((byte)'9', rnd.Next(10, 9000)));
                    break;
            }
        }

        return data.ToArray();
    }

    private static byte Terminator(byte[] src) => src.Length > 105 && src[0] == (byte)'I' ? src[105] : (byte)'\'';

    [Fact]
    public void Mutated_samples_only_raise_EdiException_end_in_time_and_stay_bounded()
    {
        double seconds = double.TryParse(Environment.GetEnvironmentVariable("EDI_FUZZ_SECONDS"), CultureInfo.InvariantCulture, out var s) ? s : 3;
        int seed = int.TryParse(Environment.GetEnvironmentVariable("EDI_FUZZ_SEED"), CultureInfo.InvariantCulture, out var sd) ? sd : Environment.TickCount;
        var rnd = new Random(seed);
        var seeds = Seeds();
        var sw = Stopwatch.StartNew();
        int runs = 0, rejected = 0;
        // At least MinRuns inputs whatever the machine's load, then as many as the time allows.
        const int MinRuns = 40;
        while (runs < MinRuns || sw.Elapsed.TotalSeconds < seconds)
        {
            var input = Mutate(seeds[rnd.Next(seeds.Count)], rnd);
            Exception? unexpected = null;
            long allocated = 0;
            var worker = new Thread(() =>
            {
                long before = GC.GetAllocatedBytesForCurrentThread();
                try
                {
                    Pipeline(input);
                }
                catch (EdiException)
                {
                    Interlocked.Increment(ref rejected);
                }
#pragma warning disable CA1031 // the point of the test: anything else is a failure
                catch (Exception ex)
                {
                    unexpected = ex;
                }
#pragma warning restore CA1031

                allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            }, 16 * 1024 * 1024)
            {
                // A parse that hangs fails the test below; as a background thread it cannot keep the test process alive.
                IsBackground = true,
            };
            worker.Start();
            string repro = $"seed {seed}, run {runs}, input (base64) {Convert.ToBase64String(input)}";
            Assert.True(worker.Join(TimeSpan.FromSeconds(5)), $"parse did not finish within 5 s: {repro}");
            Assert.True(unexpected == null, $"{unexpected}\n{repro}");
            Assert.True(allocated < 64L * 1024 * 1024 + (input.Length * 400L), $"allocated {allocated} bytes for {input.Length} bytes of input: {repro}");
            runs++;
        }

        Assert.True(rejected > 0, "no mutation was rejected: mutations not effective");
    }
}
