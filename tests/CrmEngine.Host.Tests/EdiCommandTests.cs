using System.Text;
using System.Text.Json.Nodes;
using Xunit.Abstractions;

namespace CrmEngine.Host.Tests;

/// <summary><c>crm edi parse|validate|ack</c> through the real <c>crm</c> process, on files written into a temp folder.</summary>
public sealed class EdiCommandTests(ITestOutputHelper output)
{
    private static string Isa(string control, string version, char repetition)
        => $"ISA*00*          *00*          *ZZ*BUYER          *ZZ*SELLER         *261124*1200*{repetition}*{version}*{control}*0*P*:~";

    // 005010: REF02 repeats (ISA11 '^') although REF02 does not repeat in the standard; PO1 and CTT are fine.
    private static readonly string RepeatedReference = Isa("000000301", "00501", '^')
        + "\nGS*PO*BUYER*SELLER*20261124*1200*301*X*005010~\nST*850*0001~\nBEG*00*SA*PO-301**20261124~\nREF*ZZ*DOCK-7^GATE-B~\nPO1*1*2*EA*9.5**VP*ART-1~\nCTT*1~\nSE*6*0001~\nGE*1*301~\nIEA*1*000000301~\n";

    private static readonly string CleanLatin1Orders =
        "UNA:+.? 'UNB+UNOC:3+5412345000013:14+4012345000009:14+261124:1200+ORD7'UNH+1+ORDERS:D:96A:UN'BGM+220+PO-7+9'DTM+137:20261124:102'"
        + "NAD+BY+++Société Générale d?'Épicerie'LIN+1++4000862111206:EN'QTY+21:3:PCE'UNS+S'UNT+8+1'UNZ+1+ORD7'";

    [Fact]
    public async Task Validate_lists_each_error_with_its_position_and_code_and_exits_1()
    {
        using var root = new TestRoot();
        string file = Write(root, "repeats.edi", RepeatedReference, Encoding.ASCII);

        var (code, text) = await CrmProcess.RunAsync(root.Path, output, "edi", "validate", file);

        Assert.Equal(1, code);
        var line = text.Split('\n').Single(l => l.Contains("REF", StringComparison.Ordinal) && l.Contains("[code 12]", StringComparison.Ordinal));
        Assert.Contains($"{file}: line 5", line, StringComparison.Ordinal);
        Assert.Contains("interchange 000000301 group 301 set 850 0001 segment 3 REF element 02 repetition 2", line, StringComparison.Ordinal);
        Assert.Contains("1 set(s) rejected", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Ack_writes_the_requested_acknowledgement_to_a_file_with_the_repetition_position()
    {
        using var root = new TestRoot();
        string file = Write(root, "repeats.edi", RepeatedReference, Encoding.ASCII);
        string ack = root.File_("ack.edi");

        var (code, text) = await CrmProcess.RunAsync(root.Path, output, "edi", "ack", file, "--type", "997", "--out", ack);

        Assert.Equal(1, code);
        Assert.Contains("interchange 000000301: 997 Rejected (0 of 1 set(s) accepted)", text, StringComparison.Ordinal);
        string written = await File.ReadAllTextAsync(ack);
        Assert.Contains("ST*997*", written, StringComparison.Ordinal);
        Assert.Contains("AK3*REF*3**8~AK4*2::2*127*12*GATE-B~AK5*R*5~", written, StringComparison.Ordinal);

        // The default for 00501 is the 999, printed when no file is given.
        (code, text) = await CrmProcess.RunAsync(root.Path, output, "edi", "ack", file);
        Assert.Equal(1, code);
        Assert.Contains("ST*999*", text, StringComparison.Ordinal);
        Assert.Contains("IK4*2::2*127*12*GATE-B~", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Parse_prints_json_with_the_typed_document_and_latin1_names_intact()
    {
        using var root = new TestRoot();
        string file = Write(root, "orders.edi", CleanLatin1Orders, Encoding.Latin1);

        var (code, text) = await CrmProcess.RunAsync(root.Path, output, "edi", "parse", file, "--no-segments");

        Assert.Equal(0, code);
        var json = JsonNode.Parse(text[text.IndexOf('{', StringComparison.Ordinal)..])!;
        var set = json["interchanges"]![0]!["groups"]![0]!["transactionSets"]![0]!;
        Assert.Equal("ORDERS", (string?)set["id"]);
        Assert.Equal("UNOC", (string?)json["interchanges"]![0]!["characterSet"]);
        Assert.Contains("Société Générale d'Épicerie", set["document"]!.ToJsonString(new System.Text.Json.JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }), StringComparison.Ordinal);

        (code, text) = await CrmProcess.RunAsync(root.Path, output, "edi", "validate", file);
        Assert.Equal(0, code);
        Assert.Contains("0 issue(s)", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unknown_acknowledgement_type_is_a_usage_error()
    {
        using var root = new TestRoot();
        string file = Write(root, "orders.edi", CleanLatin1Orders, Encoding.Latin1);
        var (code, text) = await CrmProcess.RunAsync(root.Path, output, "edi", "ack", file, "--type", "810");
        Assert.Equal(2, code);
        Assert.Contains("unknown acknowledgement type '810'", text, StringComparison.Ordinal);
    }

    public static TheoryData<string, string, string> UnreadableInputs()
    {
        string header = Isa("000000401", "00401", 'U') + "\nGS*PO*BUYER*SELLER*20261124*1200*401*X*004010~\n";
        string set = "ST*850*0001~\nBEG*00*SA*PO-401**20261124~\nPO1*1*2*EA*9.5**VP*ART-1~\nCTT*1~\nSE*5*0001~\n";
        return new()
        {
            { "", "empty input", "line 1, column 1 (byte 0)" },
            { "Order 4711 from ACME, please ship 3 widgets.\n", "not EDI: expected an interchange header ISA, UNA or UNB", "line 1, column 1 (byte 0)" },

            // Two whole sets, then the file stops inside the third: nothing of the first two may be printed.
            { header + set + set.Replace("0001", "0002", StringComparison.Ordinal) + "ST*850*0003~\nBEG*00*SA*PO-", "truncated input", "line 14, column 1 (byte 337)" },
            { header.Replace("004010", "003060", StringComparison.Ordinal) + set + "GE*1*401~\nIEA*1*000000401~\n", "version '003060' is not supported for 850", "line 3 (byte " },
            { Isa("000000402", "00200", 'U') + "\nGS*PO*BUYER*SELLER*20261124*1200*402*X*004010~\n" + set + "GE*1*402~\nIEA*1*000000402~\n", "interchange version ISA12 '00200' is not supported", "line 1 (byte 0)" },
        };
    }

    [Theory]
    [MemberData(nameof(UnreadableInputs))]
    public async Task Parse_of_unreadable_input_prints_only_the_error_with_its_position(string content, string error, string position)
    {
        using var root = new TestRoot();
        string file = Write(root, "bad.edi", content, Encoding.ASCII);

        var (code, text) = await CrmProcess.RunAsync(root.Path, output, "edi", "parse", file);

        Assert.Equal(2, code);
        var lines = text.Split('\n');
        var errorLine = Assert.Single(lines, l => l.Contains(error, StringComparison.Ordinal));
        Assert.StartsWith("[stderr] error: ", errorLine, StringComparison.Ordinal);
        Assert.Contains(file, errorLine, StringComparison.Ordinal);
        Assert.Contains(position, errorLine, StringComparison.Ordinal);

        // Nothing of a JSON document on standard output, not even its opening.
        Assert.DoesNotContain(lines, l => !l.StartsWith("[stderr]", StringComparison.Ordinal) && (l.Contains('{', StringComparison.Ordinal) || l.Contains("interchanges", StringComparison.Ordinal)));
    }

    private static string Write(TestRoot root, string name, string content, Encoding encoding)
    {
        string path = root.File_(name);
        File.WriteAllBytes(path, encoding.GetBytes(content));
        return path;
    }
}
