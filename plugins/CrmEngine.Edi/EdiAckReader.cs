namespace CrmEngine.Edi;

/// <summary>An acknowledgement received from a partner (997, 999 or CONTRL).</summary>
public sealed class EdiReceivedAck
{
    public required EdiStandard Standard { get; init; }

    /// <summary>997, 999 or CONTRL.</summary>
    public required string Type { get; init; }

    /// <summary>Control number of the interchange that carried the acknowledgement.</summary>
    public required string CarrierInterchangeControlNumber { get; init; }

    /// <summary>The acknowledged interchange (CONTRL UCI 0020); null for 997/999, which acknowledge groups.</summary>
    public string? AcknowledgedInterchange { get; init; }

    public EdiAckStatus? InterchangeStatus { get; init; }

    /// <summary>TA105 interchange note code (TA1 only).</summary>
    public string InterchangeCode { get; init; } = "";

    public List<EdiReceivedAckGroup> Groups { get; } = [];
}

public sealed class EdiReceivedAckGroup
{
    public string FunctionalId { get; init; } = "";

    /// <summary>Acknowledged GS06 / UNG 0048; empty for CONTRL of messages without groups.</summary>
    public string ControlNumber { get; init; } = "";

    public EdiAckStatus Status { get; set; }

    public List<string> Codes { get; } = [];

    public List<EdiReceivedAckSet> Sets { get; } = [];
}

public sealed class EdiReceivedAckSet
{
    public required string Id { get; init; }

    public required string ControlNumber { get; init; }

    public EdiAckStatus Status { get; set; }

    public List<string> Codes { get; } = [];

    /// <summary>Segment errors reported: tag (X12 only), position, code.</summary>
    public List<(string Tag, int Position, string Code)> SegmentErrors { get; } = [];

    /// <summary>Element errors reported (997/999 AK4/IK4, CONTRL UCD), each under the segment error before it.</summary>
    public List<EdiReceivedElementError> ElementErrors { get; } = [];
}

/// <summary>
/// One element error of a received acknowledgement: the segment it belongs to (position in the set, tag for X12),
/// the position composite (element, component, and the repetition of a repeating element: X12 C030 1686, EDIFACT
/// S011 0136; 0 when not given), the code (AK403/IK403, UCD 0085) and, for X12, the element reference and bad value.
/// </summary>
public sealed record EdiReceivedElementError(int SegmentPosition, string SegmentTag, int ElementPosition, int ComponentPosition, int Repetition, string Code, string ElementReference = "", string BadValue = "");

/// <summary>A document sent earlier, to be matched against acknowledgements.</summary>
public sealed record EdiSentSet(string InterchangeControlNumber, string GroupControlNumber, string SetId, string ControlNumber);

/// <summary>The outcome for one sent document. <see cref="Status"/> null: not acknowledged (yet).</summary>
public sealed record EdiAckMatch(EdiSentSet Sent, EdiAckStatus? Status, IReadOnlyList<string> Codes, EdiReceivedAck? Acknowledgement);

public static class EdiAckReader
{
    /// <summary>Reads every 997, 999 and CONTRL in <paramref name="stream"/>; other transaction sets are skipped.</summary>
    public static List<EdiReceivedAck> Read(Stream stream, EdiReaderOptions? options = null)
    {
        var result = new List<EdiReceivedAck>();
        using var r = new EdiStreamReader(stream, options);
        EdiItemKind k;
        while ((k = r.Read()) != EdiItemKind.None)
        {
            if (k == EdiItemKind.InterchangeEnd)
            {
                foreach (var (control, status, code) in r.Interchange!.InterchangeAcknowledgements)
                {
                    result.Add(new EdiReceivedAck
                    {
                        Standard = EdiStandard.X12,
                        Type = "TA1",
                        CarrierInterchangeControlNumber = r.Interchange.ControlNumber,
                        AcknowledgedInterchange = control,
                        InterchangeStatus = FromX12(status),
                        InterchangeCode = code,
                    });
                }
            }

            if (k != EdiItemKind.TransactionSet)
            {
                continue;
            }

            var set = r.TransactionSet!;
            if (set.Id is "997" or "999")
            {
                result.Add(ReadX12(set));
            }
            else if (set.Id == "CONTRL")
            {
                result.Add(ReadContrl(set));
            }
        }

        return result;
    }

    private static EdiAckStatus FromX12(string s) => s switch
    {
        "A" => EdiAckStatus.Accepted,
        "E" or "W" or "M" => EdiAckStatus.AcceptedWithErrors,
        "P" => EdiAckStatus.PartiallyAccepted,
        _ => EdiAckStatus.Rejected,
    };

    private static EdiReceivedAck ReadX12(EdiTransactionSet set)
    {
        var ack = new EdiReceivedAck { Standard = EdiStandard.X12, Type = set.Id, CarrierInterchangeControlNumber = set.Interchange.ControlNumber };
        EdiReceivedAckGroup? g = null;
        EdiReceivedAckSet? s = null;
        var segs = set.Segments;
        for (int i = 0; i < segs.Count; i++)
        {
            var seg = segs[i];
            switch (seg.Tag)
            {
                case "AK1":
                    g = new EdiReceivedAckGroup { FunctionalId = seg.Get(1), ControlNumber = seg.Get(2) };
                    ack.Groups.Add(g);
                    break;
                case "AK2" when g != null:
                    s = new EdiReceivedAckSet { Id = seg.Get(1), ControlNumber = seg.Get(2) };
                    g.Sets.Add(s);
                    break;
                case "AK3" or "IK3" when s != null:
                    s.SegmentErrors.Add((seg.Get(1), Number(seg.Get(2)), seg.Get(4)));
                    break;
                case "AK4" or "IK4" when s != null:
                {
                    // AK401/IK401 C030: element position : component position : repeating data element position.
                    var (tag, pos, _) = s.SegmentErrors.Count > 0 ? s.SegmentErrors[^1] : ("", 0, "");
                    s.ElementErrors.Add(new EdiReceivedElementError(pos, tag, Number(seg.Get(1, 1)), Number(seg.Get(1, 2)), Number(seg.Get(1, 3)), seg.Get(3), seg.Get(2), seg.Get(4)));
                    break;
                }

                case "AK5" or "IK5" when s != null:
                    s.Status = FromX12(seg.Get(1));
                    for (int e = 2; e <= seg.ElementCount; e++)
                    {
                        if (seg.Has(e))
                        {
                            s.Codes.Add(seg.Get(e));
                        }
                    }

                    break;
                case "AK9" when g != null:
                    g.Status = FromX12(seg.Get(1));
                    for (int e = 5; e <= seg.ElementCount; e++)
                    {
                        if (seg.Has(e))
                        {
                            g.Codes.Add(seg.Get(e));
                        }
                    }

                    break;
            }
        }

        return ack;
    }

    private static EdiReceivedAck ReadContrl(EdiTransactionSet set)
    {
        string? icn = null;
        EdiAckStatus? status = null;
        var segs = set.Segments;
        var groups = new List<EdiReceivedAckGroup>();
        EdiReceivedAckGroup? g = null;
        EdiReceivedAckSet? s = null;
        for (int i = 0; i < segs.Count; i++)
        {
            var seg = segs[i];
            switch (seg.Tag)
            {
                case "UCI":
                    icn = seg.Get(1);
                    status = seg.Get(4) == "4" ? EdiAckStatus.Rejected : EdiAckStatus.Accepted;
                    break;
                case "UCF":
                    g = new EdiReceivedAckGroup { ControlNumber = seg.Get(1), Status = seg.Get(4) == "4" ? EdiAckStatus.Rejected : EdiAckStatus.Accepted };
                    groups.Add(g);
                    break;
                case "UCM":
                    if (g == null)
                    {
                        g = new EdiReceivedAckGroup { Status = status ?? EdiAckStatus.Accepted };
                        groups.Add(g);
                    }

                    s = new EdiReceivedAckSet { Id = seg.Get(2, 1), ControlNumber = seg.Get(1), Status = seg.Get(3) == "4" ? EdiAckStatus.Rejected : EdiAckStatus.Accepted };
                    if (seg.Has(4))
                    {
                        s.Codes.Add(seg.Get(4));
                    }

                    g.Sets.Add(s);
                    break;
                case "UCS" when s != null:
                    s.SegmentErrors.Add(("", Number(seg.Get(1)), seg.Get(2)));
                    if (s.Status == EdiAckStatus.Accepted)
                    {
                        s.Status = EdiAckStatus.AcceptedWithErrors;
                    }

                    break;
                case "UCD" when s != null:
                    // UCD02 S011: data element position 0098, component position 0104, occurrence 0136 (syntax 4).
                    s.Codes.Add(seg.Get(1));
                    s.ElementErrors.Add(new EdiReceivedElementError(s.SegmentErrors.Count > 0 ? s.SegmentErrors[^1].Position : 0, "", Number(seg.Get(2, 1)), Number(seg.Get(2, 2)), Number(seg.Get(2, 3)), seg.Get(1)));
                    if (s.Status == EdiAckStatus.Accepted)
                    {
                        s.Status = EdiAckStatus.AcceptedWithErrors;
                    }

                    break;
            }
        }

        var ack = new EdiReceivedAck
        {
            Standard = EdiStandard.Edifact,
            Type = "CONTRL",
            CarrierInterchangeControlNumber = set.Interchange.ControlNumber,
            AcknowledgedInterchange = icn,
            InterchangeStatus = status,
        };
        ack.Groups.AddRange(groups);
        return ack;
    }

    private static int Number(string text) => int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int n) ? n : 0;

    private static bool Same(string a, string b) => string.Equals(a.TrimStart('0'), b.TrimStart('0'), StringComparison.Ordinal);

    /// <summary>Matches acknowledgements to the documents they acknowledge.</summary>
    public static List<EdiAckMatch> Match(IEnumerable<EdiReceivedAck> acks, IEnumerable<EdiSentSet> sent)
    {
        ArgumentNullException.ThrowIfNull(acks);
        ArgumentNullException.ThrowIfNull(sent);
        // Interchange-only acknowledgements (TA1, CONTRL without UCM) apply only where nothing more specific matched.
        var list = acks.OrderBy(a => a.Groups.Count == 0 ? 1 : 0).ToList();
        var result = new List<EdiAckMatch>();
        foreach (var doc in sent)
        {
            EdiAckMatch? match = null;
            foreach (var ack in list)
            {
                if (ack.AcknowledgedInterchange != null && !Same(ack.AcknowledgedInterchange, doc.InterchangeControlNumber))
                {
                    continue;
                }

                foreach (var g in ack.Groups)
                {
                    if (ack.Standard == EdiStandard.X12 && !Same(g.ControlNumber, doc.GroupControlNumber))
                    {
                        continue;
                    }

                    var s = g.Sets.FirstOrDefault(x => Same(x.ControlNumber, doc.ControlNumber) && (x.Id.Length == 0 || x.Id == doc.SetId));
                    if (s != null)
                    {
                        match = new EdiAckMatch(doc, s.Status, s.Codes.Concat(s.SegmentErrors.Select(e => e.Code)).ToList(), ack);
                    }
                    else if (ack.Standard == EdiStandard.X12 && match == null)
                    {
                        // Set not listed: the group's status applies (rejected groups reject every set).
                        var st = g.Status == EdiAckStatus.PartiallyAccepted ? EdiAckStatus.Accepted : g.Status;
                        match = new EdiAckMatch(doc, st, g.Codes, ack);
                    }
                }

                if (match == null && ack.AcknowledgedInterchange != null && ack.InterchangeStatus != null)
                {
                    match = new EdiAckMatch(doc, ack.InterchangeStatus, ack.InterchangeCode.Length > 0 ? [ack.InterchangeCode] : [], ack);
                }
            }

            result.Add(match ?? new EdiAckMatch(doc, null, [], null));
        }

        return result;
    }
}
