using System.Globalization;
using System.Text;

namespace CrmEngine.Edi;

public enum EdiAckType
{
    /// <summary>X12 997 functional acknowledgement (AK1/AK2/AK3/AK4/AK5/AK9).</summary>
    X12_997,

    /// <summary>X12 999 implementation acknowledgement (AK1/AK2/IK3/IK4/IK5/AK9), 005010X231A1.</summary>
    X12_999,

    /// <summary>EDIFACT CONTRL syntax and service report (UCI/UCF/UCM/UCS/UCD).</summary>
    Contrl,
}

/// <summary>Generates the acknowledgements that would be sent for a validation report.</summary>
public static class EdiAcknowledgements
{
    public static EdiAckType DefaultTypeFor(EdiInterchange interchange)
    {
        ArgumentNullException.ThrowIfNull(interchange);
        return interchange.Standard == EdiStandard.Edifact ? EdiAckType.Contrl
            : string.CompareOrdinal(interchange.Version, "00501") >= 0 ? EdiAckType.X12_999 : EdiAckType.X12_997;
    }

    /// <summary>Writes one acknowledgement interchange per interchange of <paramref name="report"/>.</summary>
    public static void Write(EdiValidationReport report, Stream output, EdiAckType? type = null, IEdiControlNumbers? controlNumbers = null, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(report);
        controlNumbers ??= new EdiControlNumberSequence();
        foreach (var ir in report.Interchanges)
        {
            var t = type ?? DefaultTypeFor(ir.Header);
            if (ir.Header.Standard == EdiStandard.X12 && t != EdiAckType.Contrl)
            {
                WriteX12(ir, output, t, controlNumbers, time ?? TimeProvider.System);
            }
            else if (ir.Header.Standard == EdiStandard.Edifact)
            {
                WriteContrl(ir, output, controlNumbers, time ?? TimeProvider.System);
            }
            else
            {
                throw new EdiException($"a CONTRL cannot acknowledge X12 interchange {ir.Header.ControlNumber}");
            }
        }
    }

    public static string WriteToString(EdiValidationReport report, EdiAckType? type = null, IEdiControlNumbers? controlNumbers = null, TimeProvider? time = null)
    {
        using var ms = new MemoryStream();
        Write(report, ms, type, controlNumbers, time);
        var enc = report.Interchanges.Count > 0 ? report.Interchanges[0].Header.Encoding : Encoding.UTF8;
        return enc.GetString(ms.ToArray());
    }

    private static string X12Status(EdiAckStatus s) => s switch
    {
        EdiAckStatus.Accepted => "A",
        EdiAckStatus.AcceptedWithErrors => "E",
        EdiAckStatus.PartiallyAccepted => "P",
        _ => "R",
    };

    private static string Clean(string? s, EdiDelimiters d, int max)
    {
        if (string.IsNullOrEmpty(s))
        {
            return "";
        }

        var sb = new StringBuilder(Math.Min(s.Length, max));
        foreach (char c in s)
        {
            if (sb.Length >= max)
            {
                break;
            }

            sb.Append(c < 0x80 && d.IsSpecial((byte)c) || c < 0x20 ? ' ' : c);
        }

        return sb.ToString().Trim();
    }

    private static void WriteX12(EdiInterchangeResult ir, Stream output, EdiAckType type, IEdiControlNumbers numbers, TimeProvider time)
    {
        var h = ir.Header;
        bool is999 = type == EdiAckType.X12_999;
        string isaVersion = is999 && string.CompareOrdinal(h.Version, "00501") < 0 ? "00501" : h.Version;
        var d = h.Delimiters;
        if (string.CompareOrdinal(isaVersion, "00402") >= 0 && d.Repetition == 0)
        {
            byte rep = (byte)'^';
            if (d.IsSpecial(rep))
            {
                rep = (byte)'{';
            }

            d = d with { Repetition = rep };
        }

        using var w = new EdiWriter(output, new EdiWriterOptions
        {
            Standard = EdiStandard.X12,
            Delimiters = d,
            SenderQualifier = h.ReceiverQualifier,
            SenderId = h.ReceiverId,
            ReceiverQualifier = h.SenderQualifier,
            ReceiverId = h.SenderId,
            InterchangeVersion = isaVersion,
            Test = h.TestIndicator == "T",
            ControlNumbers = numbers,
            Time = time,
        });
        w.BeginInterchange();
        if (h.Issues.Count > 0 || h.AcknowledgementRequested)
        {
            // TA1 interchange acknowledgement between ISA and GS.
            var first = h.Issues.FirstOrDefault();
            w.Segment("TA1").Element(h.ControlNumber).Element(h.Date).Element(h.Time)
                .Element(first == null ? "A" : "R").Element(first?.Code ?? "000").EndSegment();
        }

        string groupVersion = is999 ? "005010X231A1" : ir.Groups.Select(g => g.Header.Version).FirstOrDefault(v => v.Length >= 6) ?? "004010";
        if (!is999 && groupVersion.Length > 6)
        {
            groupVersion = groupVersion[..6];
        }

        w.BeginGroup("FA", groupVersion);
        foreach (var g in ir.Groups)
        {
            w.BeginSet(is999 ? "999" : "997", is999 ? "005010X231A1" : null);
            w.Segment("AK1").Element(g.Header.FunctionalId).Element(g.Header.ControlNumber);
            if (is999 || string.CompareOrdinal(groupVersion, "005010") >= 0)
            {
                w.Element(g.Header.Version);
            }

            w.EndSegment();
            foreach (var s in g.Sets)
            {
                w.Segment("AK2").Element(s.Id).Element(s.ControlNumber);
                if (is999 && s.Implementation.Length > 0)
                {
                    w.Element(s.Implementation);
                }

                w.EndSegment();
                bool contentErrors = false;
                foreach (var bySegment in s.Issues.Where(i => i.Level is EdiIssueLevel.Segment or EdiIssueLevel.Element && i.SegmentPosition > 0)
                             .GroupBy(i => (i.SegmentPosition, i.SegmentTag)).OrderBy(x => x.Key.SegmentPosition))
                {
                    contentErrors = true;
                    var segIssue = bySegment.FirstOrDefault(i => i.Level == EdiIssueLevel.Segment);
                    w.Segment(is999 ? "IK3" : "AK3").Element(bySegment.Key.SegmentTag).Element(bySegment.Key.SegmentPosition.ToString(CultureInfo.InvariantCulture))
                        .Element(Clean(segIssue?.LoopId ?? bySegment.First().LoopId, d, 4)).Element(segIssue?.Code ?? "8").EndSegment();
                    foreach (var e in bySegment.Where(i => i.Level == EdiIssueLevel.Element).Take(99))
                    {
                        string reference = e.ElementReference != null && e.ElementReference.All(char.IsAsciiDigit) ? e.ElementReference : "";
                        w.Segment(is999 ? "IK4" : "AK4")
                            .Composite(Position(e, withRepeat: true))
                            .Element(reference).Element(e.Code).Element(Clean(e.BadValue, d, 99)).EndSegment();
                    }
                }

                var codes = s.Issues.Where(i => i.Level == EdiIssueLevel.TransactionSet).Select(i => i.Code).ToList();
                if (contentErrors && s.Status != EdiAckStatus.Accepted)
                {
                    codes.Add("5");
                }

                w.Segment(is999 ? "IK5" : "AK5").Element(X12Status(s.Status));
                foreach (var c in codes.Distinct().Take(5))
                {
                    w.Element(c);
                }

                w.EndSegment();
            }

            w.Segment("AK9").Element(X12Status(g.Status))
                .Element((g.Header.DeclaredCount ?? g.SetCount).ToString(CultureInfo.InvariantCulture))
                .Element(g.SetCount.ToString(CultureInfo.InvariantCulture))
                .Element(g.AcceptedCount.ToString(CultureInfo.InvariantCulture));
            foreach (var c in g.Issues.Select(i => i.Code).Distinct().Take(5))
            {
                w.Element(c);
            }

            w.EndSegment();
            w.EndSet();
        }

        w.EndGroup();
        w.EndInterchange();
    }

    /// <summary>
    /// Element position composite: X12 C030 (722 position, 1528 component, 1686 repetition in 999 IK401)
    /// or EDIFACT S011 (0098 position, 0104 component, 0136 occurrence from syntax version 4).
    /// </summary>
    private static string?[] Position(EdiIssue e, bool withRepeat)
    {
        string? component = e.ComponentPosition > 0 ? e.ComponentPosition.ToString(CultureInfo.InvariantCulture) : null;
        string? repeat = withRepeat && e.Repetition > 0 ? e.Repetition.ToString(CultureInfo.InvariantCulture) : null;
        return [e.ElementPosition.ToString(CultureInfo.InvariantCulture), component, repeat];
    }

    private static string ContrlAction(EdiAckStatus s) => s == EdiAckStatus.Rejected ? "4" : "7";

    private static void WriteContrl(EdiInterchangeResult ir, Stream output, IEdiControlNumbers numbers, TimeProvider time)
    {
        var h = ir.Header;
        using var w = new EdiWriter(output, new EdiWriterOptions
        {
            Standard = EdiStandard.Edifact,
            Delimiters = h.Delimiters,
            CharacterSet = h.CharacterSet.Length > 0 ? h.CharacterSet : "UNOA",
            SyntaxVersion = h.Version.Length > 0 ? h.Version : "3",
            WriteServiceStringAdvice = h.HasServiceStringAdvice,
            SenderId = h.ReceiverId,
            SenderQualifier = h.ReceiverQualifier,
            ReceiverId = h.SenderId,
            ReceiverQualifier = h.SenderQualifier,
            ControlNumbers = numbers,
            Time = time,
        });
        w.BeginInterchange();
        w.BeginGroup(null, "");
        w.BeginSet("CONTRL", "CONTRL:D:3:UN");
        var first = h.Issues.FirstOrDefault();
        bool allRejected = ir.Groups.Count > 0 && ir.Groups.All(g => g.Status == EdiAckStatus.Rejected);
        w.Segment("UCI").Element(h.ControlNumber).Composite(h.SenderId, h.SenderQualifier).Composite(h.ReceiverId, h.ReceiverQualifier)
            .Element(first != null || allRejected ? "4" : "7").Element(first?.Code).EndSegment();
        foreach (var g in ir.Groups)
        {
            if (!g.Header.IsImplicit)
            {
                var gi = g.Issues.FirstOrDefault();
                w.Segment("UCF").Element(g.Header.ControlNumber).Composite(g.Header.SenderId).Composite(g.Header.ReceiverId)
                    .Element(ContrlAction(g.Status)).Element(gi?.Code).EndSegment();
            }

            foreach (var s in g.Sets)
            {
                var si = s.Issues.FirstOrDefault(i => i.Level == EdiIssueLevel.TransactionSet);
                string version = s.Version.Length > 1 ? s.Version[..1] : s.Version;
                string release = s.Version.Length > 1 ? s.Version[1..] : "";
                w.Segment("UCM").Element(s.ControlNumber).Composite(s.Id, version, release, "UN", s.Implementation)
                    .Element(ContrlAction(s.Status)).Element(si?.Code).EndSegment();
                foreach (var bySegment in s.Issues.Where(i => i.Level is EdiIssueLevel.Segment or EdiIssueLevel.Element && i.SegmentPosition > 0)
                             .GroupBy(i => i.SegmentPosition).OrderBy(x => x.Key).Take(999))
                {
                    var segIssue = bySegment.FirstOrDefault(i => i.Level == EdiIssueLevel.Segment);
                    w.Segment("UCS").Element(bySegment.Key.ToString(CultureInfo.InvariantCulture)).Element(segIssue?.Code).EndSegment();
                    foreach (var e in bySegment.Where(i => i.Level == EdiIssueLevel.Element).Take(99))
                    {
                        w.Segment("UCD").Element(e.Code)
                            .Composite(Position(e, withRepeat: true))
                            .EndSegment();
                    }
                }
            }
        }

        w.EndSet();
        w.EndGroup();
        w.EndInterchange();
    }
}
