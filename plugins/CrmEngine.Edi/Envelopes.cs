using System.Text;

namespace CrmEngine.Edi;

/// <summary>One interchange (ISA…IEA or UNB…UNZ) as read so far.</summary>
public sealed class EdiInterchange
{
    public required EdiStandard Standard { get; init; }

    public required EdiDelimiters Delimiters { get; init; }

    public bool HasServiceStringAdvice { get; init; }

    public string SenderQualifier { get; init; } = "";

    public string SenderId { get; init; } = "";

    public string ReceiverQualifier { get; init; } = "";

    public string ReceiverId { get; init; } = "";

    public string Date { get; init; } = "";

    public string Time { get; init; } = "";

    public string ControlNumber { get; init; } = "";

    /// <summary>X12: ISA12 (e.g. 00401). EDIFACT: syntax version number (UNB 0002, e.g. 3).</summary>
    public string Version { get; init; } = "";

    /// <summary>EDIFACT syntax identifier (UNOA/UNOB/UNOC/UNOW/UNOY); empty for X12.</summary>
    public string CharacterSet { get; init; } = "";

    public required Encoding Encoding { get; init; }

    public string TestIndicator { get; init; } = "";

    public bool AcknowledgementRequested { get; init; }

    public long ByteOffset { get; init; }

    public int Line { get; init; }

    /// <summary>Groups (or, in EDIFACT without UNG, messages) counted so far.</summary>
    public int ActualCount { get; internal set; }

    /// <summary>IEA01 / UNZ 0036 once the trailer was read.</summary>
    public int? DeclaredCount { get; internal set; }

    public bool Closed { get; internal set; }

    /// <summary>TA1 segments found in this interchange: acknowledged control number, status (A/E/R), note code.</summary>
    public List<(string ControlNumber, string Status, string Code)> InterchangeAcknowledgements { get; } = [];

    public List<EdiIssue> Issues { get; } = [];
}

/// <summary>One functional group (GS…GE or UNG…UNE). EDIFACT messages outside UNG belong to an implicit group.</summary>
public sealed class EdiGroup
{
    public required EdiInterchange Interchange { get; init; }

    /// <summary>X12 GS01 (e.g. PO, IN, FA) / EDIFACT UNG 0038.</summary>
    public string FunctionalId { get; init; } = "";

    public string SenderId { get; init; } = "";

    public string ReceiverId { get; init; } = "";

    public string Date { get; init; } = "";

    public string Time { get; init; } = "";

    public string ControlNumber { get; init; } = "";

    /// <summary>X12 GS08 (e.g. 004010, 005010X...) / EDIFACT UNG S008.</summary>
    public string Version { get; init; } = "";

    /// <summary>True for the implicit group of EDIFACT messages not wrapped in UNG/UNE.</summary>
    public bool IsImplicit { get; init; }

    public long ByteOffset { get; init; }

    public int Line { get; init; }

    public int ActualCount { get; internal set; }

    public int? DeclaredCount { get; internal set; }

    public bool Closed { get; internal set; }

    public List<EdiIssue> Issues { get; } = [];
}

/// <summary>One transaction set (ST…SE) or message (UNH…UNT).</summary>
public sealed class EdiTransactionSet
{
    public required EdiGroup Group { get; init; }

    /// <summary>X12 ST01 (850) / EDIFACT message type (ORDERS).</summary>
    public required string Id { get; init; }

    public required string ControlNumber { get; init; }

    /// <summary>Version key used to find the definition: X12 "004010"/"005010", EDIFACT "D96A"/"D01B".</summary>
    public required string Version { get; init; }

    /// <summary>X12 ST03 / GS08 implementation reference, EDIFACT association code (UNH S009 0057).</summary>
    public string Implementation { get; init; } = "";

    /// <summary>The segments (header and trailer included). Reused by the reader: copy with <see cref="EdiSegmentList.Clone"/> to keep.</summary>
    public required EdiSegmentList Segments { get; init; }

    public long ByteOffset { get; init; }

    public int Line { get; init; }

    public int? DeclaredSegmentCount { get; internal set; }

    /// <summary>Segments read for the set (also when the reader's inline validation kept none in <see cref="Segments"/>).</summary>
    internal int SegmentsRead { get; set; }

    public bool Closed { get; internal set; }

    public List<EdiIssue> Issues { get; } = [];

    public EdiInterchange Interchange => Group.Interchange;

    public EdiStandard Standard => Group.Interchange.Standard;
}

public enum EdiItemKind
{
    None,
    InterchangeStart,
    GroupStart,
    TransactionSet,
    GroupEnd,
    InterchangeEnd,
}
