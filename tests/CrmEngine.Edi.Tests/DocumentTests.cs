using System.Text;
using System.Text.Json;

namespace CrmEngine.Edi.Tests;

public class DocumentTests
{
    private static string Json(IEnumerable<EdiBusinessDocument> docs) => JsonSerializer.Serialize(docs);

    private static (string Text, byte[] Bytes) Write(EdiWriterOptions o, IReadOnlyList<EdiBusinessDocument> docs)
    {
        using var ms = new MemoryStream();
        EdiDocuments.WriteInterchange(ms, o, docs);
        return (Encoding.Latin1.GetString(ms.ToArray()), ms.ToArray());
    }

    private static void AssertRoundTrip(EdiWriterOptions o, IReadOnlyList<EdiBusinessDocument> docs)
    {
        var (text, bytes) = Write(o, docs);
        var report = EdiValidation.Validate(new MemoryStream(bytes));
        Assert.Equal("", string.Join("\n", report.AllIssues));
        var back = EdiDocuments.ReadAll(new MemoryStream(bytes));
        Assert.Equal(Json(docs), Json(back));
        Assert.NotEmpty(text);
    }

    [Theory]
    [InlineData("x12-850-004010.edi")]
    [InlineData("x12-005010-810-and-850-groups.edi")]
    [InlineData("edifact-orders-d96a-unoc-latin1.edi")]
    public void Samples_read_write_read_to_the_same_documents(string sample)
    {
        var docs = EdiDocuments.ReadAll(File.OpenRead(TestUtil.SamplePath(sample)));
        Assert.NotEmpty(docs);
        var std = docs[0].Standard;
        AssertRoundTrip(new EdiWriterOptions { Standard = std, CharacterSet = "UNOC", InterchangeVersion = docs[0].Version == "005010" ? "00501" : "00401" }, docs);
    }

    [Fact]
    public void Purchase_order_from_sample_has_parties_lines_and_totals()
    {
        var po = Assert.Single(EdiDocuments.ReadAll(File.OpenRead(TestUtil.SamplePath("x12-850-004010.edi"))));
        Assert.Equal(EdiDocumentType.PurchaseOrder, po.Type);
        Assert.Equal("PO-4711", po.Number);
        Assert.Equal("20261124", po.Date);
        Assert.Equal("USD", po.Currency);
        Assert.Equal(["BY", "ST"], po.Parties.Select(p => p.Role));
        Assert.Equal("Worcester", po.Parties[1].City);
        Assert.Equal(2, po.Lines.Count);
        Assert.Equal(12.5m, po.Lines[0].UnitPrice);
        Assert.Equal(new EdiItemId("UP", "012345678905"), po.Lines[0].ItemIds[1]);
        Assert.Equal("Blue widget", po.Lines[0].Description);
        Assert.Equal(521m, po.TotalAmount);

        var orders = Assert.Single(EdiDocuments.ReadAll(File.OpenRead(TestUtil.SamplePath("edifact-orders-d96a-unoc-latin1.edi"))));
        Assert.Equal("Müller Großhandel GmbH", orders.Parties[1].Name);
        Assert.Equal("Crème brûlée 6x100g", orders.Lines[0].Description);
        Assert.Equal(70.2m, orders.TotalAmount);
    }

    private static EdiBusinessDocument Sample(EdiDocumentType type, EdiStandard std, string version)
    {
        var d = new EdiBusinessDocument
        {
            Type = type,
            Standard = std,
            Version = version,
            Number = "DOC-1",
            Date = "20261124",
            Currency = type == EdiDocumentType.ShipNotice ? "" : "EUR",
            OrderNumber = type == EdiDocumentType.PurchaseOrder ? "" : "PO-4711",
            Purpose = std == EdiStandard.X12 ? (type == EdiDocumentType.Invoice ? "" : "00") : "9",
            Status = std == EdiStandard.X12 ? type switch { EdiDocumentType.PurchaseOrder => "SA", EdiDocumentType.OrderResponse => "AC", _ => "" } : "",
            Time = type == EdiDocumentType.ShipNotice && std == EdiStandard.X12 ? "1330" : "",
            LineCount = 2,
            TotalAmount = type == EdiDocumentType.ShipNotice ? null : 45.5m,
        };
        d.Parties.Add(new EdiParty { Role = "BY", Id = "4012345000009", IdQualifier = std == EdiStandard.X12 ? "92" : "9", Name = "Société d'Édition Ærø & Co", Street = "Hauptstraße 5", City = "München", PostalCode = "80331", Country = "DE" });
        d.Parties.Add(new EdiParty { Role = std == EdiStandard.X12 ? "SE" : "SU", Name = std == EdiStandard.X12 ? "Seller (Plus/Minus) Ltd" : "Seller: Plus+Minus? Ltd" });
        d.References.Add(new EdiReference("CT", "K-1'2"));
        d.Dates.Add(new EdiDate(std == EdiStandard.X12 ? "002" : "2", "20261201"));
        for (int i = 1; i <= 2; i++)
        {
            var l = new EdiLine { LineNumber = i.ToString(System.Globalization.CultureInfo.InvariantCulture), Quantity = 3 * i, Unit = std == EdiStandard.X12 ? "EA" : "PCE", Description = $"Größe {i}", Status = type == EdiDocumentType.OrderResponse ? (std == EdiStandard.X12 ? "IA" : "5") : "" };
            if (type != EdiDocumentType.ShipNotice)
            {
                l.UnitPrice = 4.55m;
            }

            l.ItemIds.Add(new EdiItemId(std == EdiStandard.X12 ? "VP" : "EN", $"400086214140{i}"));
            l.ItemIds.Add(new EdiItemId(std == EdiStandard.X12 ? "BP" : "SA", $"ART-{i}"));
            d.Lines.Add(l);
        }

        return d;
    }

    public static TheoryData<EdiDocumentType, string> Cases()
    {
        var t = new TheoryData<EdiDocumentType, string>();
        foreach (var type in Enum.GetValues<EdiDocumentType>())
        {
            foreach (var v in new[] { "004010", "005010", "D96A", "D01B" })
            {
                t.Add(type, v);
            }
        }

        return t;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Typed_documents_round_trip_with_partner_settings(EdiDocumentType type, string version)
    {
        bool x12 = version.StartsWith('0');
        var std = x12 ? EdiStandard.X12 : EdiStandard.Edifact;
        var doc = Sample(type, std, version);
        if (x12)
        {
            AssertRoundTrip(new EdiWriterOptions { Standard = std, InterchangeVersion = version == "005010" ? "00501" : "00401", SegmentSuffix = "\r\n", Delimiters = new EdiDelimiters((byte)'|', (byte)'>', (byte)'^', (byte)'~', 0, (byte)'.') }, [doc]);
        }
        else
        {
            AssertRoundTrip(new EdiWriterOptions { Standard = std, CharacterSet = "UNOC", Delimiters = new EdiDelimiters((byte)'*', (byte)'=', (byte)'^', (byte)'~', (byte)'?', (byte)'.') }, [doc]);
            AssertRoundTrip(new EdiWriterOptions { Standard = std, CharacterSet = "UNOY", SyntaxVersion = "4" }, [doc]);
        }
    }

    [Fact]
    public void Writer_pads_isa_uses_supplied_control_numbers_and_escapes_edifact()
    {
        var seq = new EdiControlNumberSequence(42, 7, 1);
        var (text, _) = Write(new EdiWriterOptions { Standard = EdiStandard.X12, SenderId = "ME", ReceiverId = "YOU", ControlNumbers = seq }, [Sample(EdiDocumentType.Invoice, EdiStandard.X12, "004010")]);
        var isa = text[..(text.IndexOf('~', StringComparison.Ordinal) + 1)];
        Assert.Equal(106, isa.Length);
        Assert.Contains("*ZZ*ME             *ZZ*YOU            *", isa, StringComparison.Ordinal);
        Assert.Contains("*000000042*0*P*:~", isa, StringComparison.Ordinal);
        Assert.Contains("GS*IN*ME*YOU*", text, StringComparison.Ordinal);
        Assert.Contains("*7*X*004010~ST*810*0001~", text, StringComparison.Ordinal);
        Assert.EndsWith("GE*1*7~IEA*1*000000042~", text, StringComparison.Ordinal);
        Assert.Contains("TDS*4550~", text, StringComparison.Ordinal);

        using var ms = new MemoryStream();
        EdiDocuments.WriteInterchange(ms, new EdiWriterOptions { Standard = EdiStandard.Edifact, CharacterSet = "UNOC" }, [Sample(EdiDocumentType.PurchaseOrder, EdiStandard.Edifact, "D96A")]);
        string edi = Encoding.Latin1.GetString(ms.ToArray());
        Assert.StartsWith("UNA:+.? 'UNB+UNOC:3+SENDER:ZZ+RECEIVER:ZZ+", edi, StringComparison.Ordinal);
        Assert.Contains("RFF+CT:K-1?'2'", edi, StringComparison.Ordinal);
        Assert.Contains("NAD+SU+++Seller?: Plus?+Minus?? Ltd'", edi, StringComparison.Ordinal);
        Assert.Contains("Société", edi, StringComparison.Ordinal);
    }

    [Fact]
    public void Characters_outside_the_partner_charset_are_an_EdiException()
    {
        var doc = Sample(EdiDocumentType.PurchaseOrder, EdiStandard.Edifact, "D96A");
        Assert.Throws<EdiException>(() => Write(new EdiWriterOptions { Standard = EdiStandard.Edifact, CharacterSet = "UNOA" }, [doc]));
        var x12 = Sample(EdiDocumentType.PurchaseOrder, EdiStandard.X12, "004010");
        x12.Parties[1] = x12.Parties[1] with { Name = "A*B" };
        Assert.Throws<EdiException>(() => Write(new EdiWriterOptions { Standard = EdiStandard.X12 }, [x12]));
    }
}
