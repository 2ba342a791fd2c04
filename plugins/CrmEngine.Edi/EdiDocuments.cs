using System.Globalization;

namespace CrmEngine.Edi;

/// <summary>Builds typed documents from transaction sets and writes them back (850/855/856/810, ORDERS/ORDRSP/DESADV/INVOIC).</summary>
public static class EdiDocuments
{
    public static bool IsSupported(EdiStandard standard, string setId) => TypeOf(standard, setId) != null;

    private static EdiDocumentType? TypeOf(EdiStandard standard, string id) => (standard, id) switch
    {
        (EdiStandard.X12, "850") or (EdiStandard.Edifact, "ORDERS") => EdiDocumentType.PurchaseOrder,
        (EdiStandard.X12, "855") or (EdiStandard.Edifact, "ORDRSP") => EdiDocumentType.OrderResponse,
        (EdiStandard.X12, "856") or (EdiStandard.Edifact, "DESADV") => EdiDocumentType.ShipNotice,
        (EdiStandard.X12, "810") or (EdiStandard.Edifact, "INVOIC") => EdiDocumentType.Invoice,
        _ => null,
    };

    private static decimal? Dec(string s) => decimal.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? d
        : decimal.TryParse(s.Replace(',', '.'), NumberStyles.Float, CultureInfo.InvariantCulture, out d) ? d : null;

    /// <summary>Builds the typed document of <paramref name="set"/>, or null when the set is not a business document.</summary>
    public static EdiBusinessDocument? FromSet(EdiTransactionSet set)
    {
        ArgumentNullException.ThrowIfNull(set);
        var type = TypeOf(set.Standard, set.Id);
        if (type == null)
        {
            return null;
        }

        var doc = new EdiBusinessDocument { Type = type.Value, Standard = set.Standard, Version = set.Version };
        if (set.Standard == EdiStandard.X12)
        {
            ReadX12(set.Segments, doc);
        }
        else
        {
            ReadEdifact(set.Segments, doc);
        }

        return doc;
    }

    /// <summary>Reads every business document of a stream (acknowledgements and unknown sets skipped).</summary>
    public static List<EdiBusinessDocument> ReadAll(Stream stream, EdiReaderOptions? options = null)
    {
        var list = new List<EdiBusinessDocument>();
        using var r = new EdiStreamReader(stream, options);
        while (r.Read() is var k && k != EdiItemKind.None)
        {
            if (k == EdiItemKind.TransactionSet && FromSet(r.TransactionSet!) is { } doc)
            {
                list.Add(doc);
            }
        }

        return list;
    }

    // ------------------------------------------------------------------ X12 read

    private static void ReadX12(EdiSegmentList segs, EdiBusinessDocument doc)
    {
        EdiParty? party = null;
        EdiLine? line = null;
        for (int i = 0; i < segs.Count; i++)
        {
            var s = segs[i];
            switch (s.Tag)
            {
                case "BEG":
                    doc.Purpose = s.Get(1);
                    doc.Status = s.Get(2);
                    doc.Number = s.Get(3);
                    doc.Date = s.Get(5);
                    break;
                case "BAK":
                    doc.Purpose = s.Get(1);
                    doc.Status = s.Get(2);
                    doc.OrderNumber = s.Get(3);
                    doc.Date = s.Get(4);
                    doc.Number = s.Get(8);
                    break;
                case "BSN":
                    doc.Purpose = s.Get(1);
                    doc.Number = s.Get(2);
                    doc.Date = s.Get(3);
                    doc.Time = s.Get(4);
                    break;
                case "BIG":
                    doc.Date = s.Get(1);
                    doc.Number = s.Get(2);
                    doc.OrderNumber = s.Get(4);
                    break;
                case "PRF":
                    doc.OrderNumber = s.Get(1);
                    break;
                case "CUR":
                    doc.Currency = s.Get(2);
                    break;
                case "REF" when line == null:
                    // REF02 repeated (00402 on, where a partner's guide allows it): one reference per repetition.
                    for (int r = 1; r <= Math.Max(1, s.RepeatCount(2)); r++)
                    {
                        doc.References.Add(new EdiReference(s.Get(1), s.Get(2, 0, r)));
                    }

                    break;
                case "DTM" when line == null:
                    doc.Dates.Add(new EdiDate(s.Get(1), s.Get(2)));
                    break;
                case "N1":
                    party = new EdiParty { Role = s.Get(1), Name = s.Get(2), IdQualifier = s.Get(3), Id = s.Get(4) };
                    doc.Parties.Add(party);
                    break;
                case "N3" when party != null:
                    Replace(doc, ref party, party with { Street = s.Get(1), Street2 = s.Get(2) });
                    break;
                case "N4" when party != null:
                    Replace(doc, ref party, party with { City = s.Get(1), Region = s.Get(2), PostalCode = s.Get(3), Country = s.Get(4) });
                    break;
                case "PO1" or "IT1":
                    line = new EdiLine { LineNumber = s.Get(1), Quantity = Dec(s.Get(2)), Unit = s.Get(3), UnitPrice = Dec(s.Get(4)) };
                    AddIds(s, line, 6);
                    doc.Lines.Add(line);
                    party = null;
                    break;
                case "HL":
                    party = null;
                    if (s.Get(3) == "I")
                    {
                        line = new EdiLine();
                        doc.Lines.Add(line);
                    }

                    break;
                case "LIN" when line != null:
                    line.LineNumber = s.Get(1);
                    AddIds(s, line, 2);
                    break;
                case "SN1" when line != null:
                    line.Quantity = Dec(s.Get(2));
                    line.Unit = s.Get(3);
                    break;
                case "ACK" when line != null:
                    line.Status = s.Get(1);
                    break;
                case "PID" when line != null:
                    line.Description = s.Get(5);
                    break;
                case "CTT":
                    doc.LineCount = int.TryParse(s.Get(1), CultureInfo.InvariantCulture, out int n) ? n : null;
                    break;
                case "AMT" when s.Get(1) == "TT":
                    doc.TotalAmount = Dec(s.Get(2));
                    break;
                case "TDS":
                    doc.TotalAmount = Dec(s.Get(1)) / 100m;
                    break;
            }
        }
    }

    private static void Replace(EdiBusinessDocument doc, ref EdiParty? party, EdiParty updated)
    {
        int idx = doc.Parties.LastIndexOf(party!);
        doc.Parties[idx] = updated;
        party = updated;
    }

    private static void AddIds(EdiSegment s, EdiLine line, int first)
    {
        for (int e = first; e + 1 <= s.ElementCount; e += 2)
        {
            if (s.Has(e) && s.Has(e + 1))
            {
                line.ItemIds.Add(new EdiItemId(s.Get(e), s.Get(e + 1)));
            }
        }
    }

    // ------------------------------------------------------------------ EDIFACT read

    private static void ReadEdifact(EdiSegmentList segs, EdiBusinessDocument doc)
    {
        EdiLine? line = null;
        bool summary = false;
        for (int i = 0; i < segs.Count; i++)
        {
            var s = segs[i];
            switch (s.Tag)
            {
                case "BGM":
                    doc.Number = s.Get(2, 1);
                    doc.Purpose = s.Get(3);
                    break;
                case "DTM" when line == null:
                    if (s.Get(1, 1) == "137")
                    {
                        doc.Date = s.Get(1, 2);
                    }
                    else
                    {
                        doc.Dates.Add(new EdiDate(s.Get(1, 1), s.Get(1, 2), s.Get(1, 3)));
                    }

                    break;
                case "RFF" when line == null:
                    if (s.Get(1, 1) == "ON" && doc.Type != EdiDocumentType.PurchaseOrder)
                    {
                        doc.OrderNumber = s.Get(1, 2);
                    }
                    else
                    {
                        doc.References.Add(new EdiReference(s.Get(1, 1), s.Get(1, 2)));
                    }

                    break;
                case "NAD" when line == null:
                    doc.Parties.Add(new EdiParty
                    {
                        Role = s.Get(1),
                        Id = s.Get(2, 1),
                        IdQualifier = s.Get(2, 3),
                        Name = s.Get(4, 1),
                        Street = s.Get(5, 1),
                        Street2 = s.Get(5, 2),
                        City = s.Get(6),
                        Region = s.Get(7),
                        PostalCode = s.Get(8),
                        Country = s.Get(9),
                    });
                    break;
                case "CUX" when line == null:
                    doc.Currency = s.Get(1, 2);
                    break;
                case "LIN":
                    line = new EdiLine { LineNumber = s.Get(1), Status = s.Get(2) };
                    if (s.Has(3, 1))
                    {
                        line.ItemIds.Add(new EdiItemId(s.Get(3, 2), s.Get(3, 1)));
                    }

                    doc.Lines.Add(line);
                    break;
                case "PIA" when line != null:
                    for (int e = 2; e <= s.ElementCount; e++)
                    {
                        if (s.Has(e, 1))
                        {
                            line.ItemIds.Add(new EdiItemId(s.Get(e, 2), s.Get(e, 1)));
                        }
                    }

                    break;
                case "IMD" when line != null:
                    line.Description = s.Get(3, 4);
                    break;
                case "QTY" when line != null && line.Quantity == null:
                    line.Quantity = Dec(s.Get(1, 2));
                    line.Unit = s.Get(1, 3);
                    break;
                case "PRI" when line != null && line.UnitPrice == null:
                    line.UnitPrice = Dec(s.Get(1, 2));
                    break;
                case "UNS":
                    summary = true;
                    line = null;
                    break;
                case "MOA" when summary && s.Get(1, 1) is "86" or "77" or "9" or "79" or "128" && doc.TotalAmount == null:
                    doc.TotalAmount = Dec(s.Get(1, 2));
                    break;
                case "CNT" when s.Get(1, 1) == "2":
                    doc.LineCount = int.TryParse(s.Get(1, 2), CultureInfo.InvariantCulture, out int n) ? n : null;
                    break;
            }
        }
    }

    // ------------------------------------------------------------------ write

    /// <summary>Writes one interchange with one group holding <paramref name="documents"/> (all of one standard and version).</summary>
    public static void WriteInterchange(Stream output, EdiWriterOptions options, IReadOnlyList<EdiBusinessDocument> documents)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(documents);
        using var w = new EdiWriter(output, options);
        w.BeginInterchange();
        foreach (var byGroup in documents.GroupBy(d => (d.FunctionalId, d.Version)))
        {
            if (options.Standard == EdiStandard.X12)
            {
                w.BeginGroup(byGroup.Key.FunctionalId, byGroup.Key.Version);
            }
            else
            {
                w.BeginGroup(null, "");
            }

            foreach (var d in byGroup)
            {
                Write(w, d);
            }

            w.EndGroup();
        }

        w.EndInterchange();
    }

    /// <summary>Writes one document as a transaction set (ST…SE / UNH…UNT) inside an open group.</summary>
    public static string Write(EdiWriter w, EdiBusinessDocument doc)
    {
        ArgumentNullException.ThrowIfNull(w);
        ArgumentNullException.ThrowIfNull(doc);
        if (doc.Standard == EdiStandard.X12)
        {
            string control = w.BeginSet(doc.SetId, string.CompareOrdinal(doc.Version, "005010") >= 0 ? doc.Version : null);
            WriteX12(w, doc);
            w.EndSet();
            return control;
        }
        else
        {
            string v = doc.Version.Length > 1 ? doc.Version : "D96A";
            string control = w.BeginSet(doc.SetId, $"{doc.SetId}:{v[..1]}:{v[1..]}:UN");
            WriteEdifact(w, doc);
            w.EndSet();
            return control;
        }
    }

    private static string N(decimal? d) => d == null ? "" : EdiWriter.FormatNumber(d.Value);

    private static void WriteX12(EdiWriter w, EdiBusinessDocument d)
    {
        switch (d.Type)
        {
            case EdiDocumentType.PurchaseOrder:
                w.Segment("BEG").Element(Or(d.Purpose, "00")).Element(Or(d.Status, "SA")).Element(d.Number).Element("").Element(d.Date).EndSegment();
                break;
            case EdiDocumentType.OrderResponse:
                w.Segment("BAK").Element(Or(d.Purpose, "00")).Element(Or(d.Status, "AC")).Element(d.OrderNumber).Element(d.Date)
                    .Element("").Element("").Element("").Element(d.Number).EndSegment();
                break;
            case EdiDocumentType.ShipNotice:
                w.Segment("BSN").Element(Or(d.Purpose, "00")).Element(d.Number).Element(d.Date).Element(Or(d.Time, "0000")).EndSegment();
                break;
            case EdiDocumentType.Invoice:
                w.Segment("BIG").Element(d.Date).Element(d.Number).Element("").Element(d.OrderNumber).EndSegment();
                break;
        }

        if (d.Type == EdiDocumentType.ShipNotice)
        {
            WriteX12Asn(w, d);
            return;
        }

        if (d.Currency.Length > 0)
        {
            w.Segment("CUR").Element(d.Type == EdiDocumentType.Invoice ? "SE" : "BY").Element(d.Currency).EndSegment();
        }

        foreach (var r in d.References)
        {
            w.Segment("REF").Element(r.Qualifier).Element(r.Value).EndSegment();
        }

        if (d.Type != EdiDocumentType.Invoice)
        {
            WriteDates(w, d);
        }

        WriteParties(w, d);
        if (d.Type == EdiDocumentType.Invoice)
        {
            WriteDates(w, d);
        }

        foreach (var l in d.Lines)
        {
            w.Segment(d.Type == EdiDocumentType.Invoice ? "IT1" : "PO1").Element(l.LineNumber).Element(N(l.Quantity)).Element(l.Unit).Element(N(l.UnitPrice)).Element("");
            foreach (var id in l.ItemIds)
            {
                w.Element(id.Qualifier).Element(id.Value);
            }

            w.EndSegment();
            if (l.Description.Length > 0)
            {
                w.Segment("PID").Element("F").Element("").Element("").Element("").Element(l.Description).EndSegment();
            }

            if (d.Type == EdiDocumentType.OrderResponse && l.Status.Length > 0)
            {
                w.Segment("ACK").Element(l.Status).Element(N(l.Quantity)).Element(l.Unit).EndSegment();
            }
        }

        if (d.Type == EdiDocumentType.Invoice)
        {
            w.Segment("TDS").Element(((long)decimal.Round((d.TotalAmount ?? Sum(d)) * 100m)).ToString(CultureInfo.InvariantCulture)).EndSegment();
            w.Segment("CTT").Element((d.LineCount ?? d.Lines.Count).ToString(CultureInfo.InvariantCulture)).EndSegment();
            return;
        }

        w.Segment("CTT").Element((d.LineCount ?? d.Lines.Count).ToString(CultureInfo.InvariantCulture)).EndSegment();
        if (d.TotalAmount != null)
        {
            w.Segment("AMT").Element("TT").Element(N(d.TotalAmount)).EndSegment();
        }
    }

    private static decimal Sum(EdiBusinessDocument d) => d.Lines.Sum(l => (l.Quantity ?? 0) * (l.UnitPrice ?? 0));

    private static string Or(string v, string fallback) => v.Length > 0 ? v : fallback;

    private static void WriteDates(EdiWriter w, EdiBusinessDocument d)
    {
        foreach (var dt in d.Dates)
        {
            w.Segment("DTM").Element(dt.Qualifier).Element(dt.Value).EndSegment();
        }
    }

    private static void WriteParties(EdiWriter w, EdiBusinessDocument d)
    {
        foreach (var p in d.Parties)
        {
            w.Segment("N1").Element(p.Role).Element(p.Name).Element(p.IdQualifier).Element(p.Id).EndSegment();
            if (p.Street.Length > 0 || p.Street2.Length > 0)
            {
                w.Segment("N3").Element(p.Street).Element(p.Street2).EndSegment();
            }

            if (p.City.Length + p.Region.Length + p.PostalCode.Length + p.Country.Length > 0)
            {
                w.Segment("N4").Element(p.City).Element(p.Region).Element(p.PostalCode).Element(p.Country).EndSegment();
            }
        }
    }

    private static void WriteX12Asn(EdiWriter w, EdiBusinessDocument d)
    {
        int hl = 1;
        w.Segment("HL").Element("1").Element("").Element("S").EndSegment();
        foreach (var r in d.References)
        {
            w.Segment("REF").Element(r.Qualifier).Element(r.Value).EndSegment();
        }

        WriteDates(w, d);
        WriteParties(w, d);
        int order = ++hl;
        w.Segment("HL").Element(order.ToString(CultureInfo.InvariantCulture)).Element("1").Element("O").EndSegment();
        if (d.OrderNumber.Length > 0)
        {
            w.Segment("PRF").Element(d.OrderNumber).EndSegment();
        }

        foreach (var l in d.Lines)
        {
            w.Segment("HL").Element((++hl).ToString(CultureInfo.InvariantCulture)).Element(order.ToString(CultureInfo.InvariantCulture)).Element("I").EndSegment();
            w.Segment("LIN").Element(l.LineNumber);
            foreach (var id in l.ItemIds)
            {
                w.Element(id.Qualifier).Element(id.Value);
            }

            w.EndSegment();
            w.Segment("SN1").Element("").Element(N(l.Quantity)).Element(l.Unit).EndSegment();
            if (l.Description.Length > 0)
            {
                w.Segment("PID").Element("F").Element("").Element("").Element("").Element(l.Description).EndSegment();
            }
        }

        w.Segment("CTT").Element((d.LineCount ?? d.Lines.Count).ToString(CultureInfo.InvariantCulture)).EndSegment();
    }

    private static void WriteEdifact(EdiWriter w, EdiBusinessDocument d)
    {
        string docCode = d.Type switch { EdiDocumentType.PurchaseOrder => "220", EdiDocumentType.OrderResponse => "231", EdiDocumentType.ShipNotice => "351", _ => "380" };
        w.Segment("BGM").Element(docCode).Element(d.Number).Element(Or(d.Purpose, "9")).EndSegment();
        if (d.Date.Length > 0)
        {
            w.Segment("DTM").Composite("137", d.Date, "102").EndSegment();
        }

        foreach (var dt in d.Dates)
        {
            w.Segment("DTM").Composite(dt.Qualifier, dt.Value, dt.Format).EndSegment();
        }

        if (d.OrderNumber.Length > 0 && d.Type != EdiDocumentType.PurchaseOrder)
        {
            w.Segment("RFF").Composite("ON", d.OrderNumber).EndSegment();
        }

        foreach (var r in d.References)
        {
            w.Segment("RFF").Composite(r.Qualifier, r.Value).EndSegment();
        }

        foreach (var p in d.Parties)
        {
            w.Segment("NAD").Element(p.Role).Composite(p.Id, "", p.IdQualifier).Element("").Composite(p.Name).Composite(p.Street, p.Street2)
                .Element(p.City).Element(p.Region).Element(p.PostalCode).Element(p.Country).EndSegment();
        }

        if (d.Currency.Length > 0 && d.Type != EdiDocumentType.ShipNotice)
        {
            w.Segment("CUX").Composite("2", d.Currency, "9").EndSegment();
        }

        if (d.Type == EdiDocumentType.ShipNotice)
        {
            w.Segment("CPS").Element("1").EndSegment();
        }

        string qtyQualifier = d.Type switch { EdiDocumentType.ShipNotice => "12", EdiDocumentType.Invoice => "47", _ => "21" };
        foreach (var l in d.Lines)
        {
            var first = l.ItemIds.Count > 0 ? l.ItemIds[0] : null;
            w.Segment("LIN").Element(l.LineNumber).Element(l.Status).Composite(first?.Value, first?.Qualifier).EndSegment();
            for (int i = 1; i < l.ItemIds.Count; i++)
            {
                w.Segment("PIA").Element("1").Composite(l.ItemIds[i].Value, l.ItemIds[i].Qualifier).EndSegment();
            }

            if (l.Description.Length > 0)
            {
                w.Segment("IMD").Element("F").Element("").Composite("", "", "", l.Description).EndSegment();
            }

            if (l.Quantity != null)
            {
                w.Segment("QTY").Composite(qtyQualifier, N(l.Quantity), l.Unit).EndSegment();
            }

            if (l.UnitPrice != null && d.Type != EdiDocumentType.ShipNotice)
            {
                w.Segment("PRI").Composite("AAA", N(l.UnitPrice)).EndSegment();
            }
        }

        if (d.Type != EdiDocumentType.ShipNotice)
        {
            w.Segment("UNS").Element("S").EndSegment();
            if (d.Type == EdiDocumentType.Invoice)
            {
                w.Segment("CNT").Composite("2", (d.LineCount ?? d.Lines.Count).ToString(CultureInfo.InvariantCulture)).EndSegment();
                w.Segment("MOA").Composite("77", N(d.TotalAmount ?? Sum(d))).EndSegment();
                return;
            }

            if (d.TotalAmount != null)
            {
                w.Segment("MOA").Composite("86", N(d.TotalAmount)).EndSegment();
            }
        }

        w.Segment("CNT").Composite("2", (d.LineCount ?? d.Lines.Count).ToString(CultureInfo.InvariantCulture)).EndSegment();
    }
}
