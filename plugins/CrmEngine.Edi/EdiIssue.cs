namespace CrmEngine.Edi;

/// <summary>What went wrong. Each kind maps to the standard code an acknowledgement carries (see <see cref="EdiErrorCodes"/>).</summary>
public enum EdiErrorKind
{
    // Interchange level (X12 TA1 TA105 / EDIFACT 0085 in UCI)
    InterchangeControlNumberMismatch,
    InterchangeGroupCountMismatch,
    InterchangeTrailerMissing,
    DuplicateInterchange,
    UnsupportedInterchangeVersion,
    InvalidInterchangeContent,
    InvalidInterchangeHeader,

    // Group level (X12 AK905 / 0085 in UCF/UCI)
    GroupControlNumberMismatch,
    GroupSetCountMismatch,
    GroupTrailerMissing,
    DuplicateGroup,
    GroupNotSupported,

    // Transaction set / message level (X12 AK502/IK502 / 0085 in UCM)
    SetNotSupported,
    SetTrailerMissing,
    SetControlNumberMismatch,
    SetSegmentCountMismatch,
    DuplicateSet,
    SetIdentifierInvalid,
    SetHierarchyInvalid,

    // Segment level (X12 AK304/IK304 / 0085 in UCS)
    UnrecognizedSegment,
    UnexpectedSegment,
    MandatorySegmentMissing,
    LoopOverMaximum,
    SegmentOverMaximum,
    SegmentNotInSet,
    SegmentOutOfSequence,
    SegmentHasElementErrors,

    // Element level (X12 AK403/IK403 / 0085 in UCD)
    MandatoryElementMissing,
    ConditionalElementMissing,
    TooManyElements,
    ElementTooShort,
    ElementTooLong,
    InvalidCharacter,
    InvalidCodeValue,
    InvalidDate,
    InvalidTime,
    TooManyRepetitions,
    TooManyComponents,
    ExclusionConditionViolated,
}

public enum EdiIssueLevel
{
    Interchange,
    Group,
    TransactionSet,
    Segment,
    Element,
}

/// <summary>One validation finding, positioned down to the component, carrying the standard code.</summary>
public sealed class EdiIssue
{
    public required EdiErrorKind Kind { get; init; }

    public required EdiStandard Standard { get; init; }

    public required string Message { get; init; }

    public EdiIssueLevel Level => EdiErrorCodes.LevelOf(Kind);

    /// <summary>The code an acknowledgement carries: X12 TA105/AK905/AK502/AK304/AK403 or EDIFACT 0085.</summary>
    public string Code => EdiErrorCodes.Code(Kind, Standard);

    public string? InterchangeControlNumber { get; init; }

    public string? GroupControlNumber { get; init; }

    public string? SetControlNumber { get; init; }

    public string? SetId { get; init; }

    /// <summary>1-based position of the segment in its transaction set (ST/UNH = 1); 0 when not about a segment.</summary>
    public int SegmentPosition { get; init; }

    public string? SegmentTag { get; init; }

    /// <summary>Loop / segment group the segment belongs to (X12 AK303), when known.</summary>
    public string? LoopId { get; init; }

    /// <summary>1-based element position; 0 when not about an element.</summary>
    public int ElementPosition { get; init; }

    /// <summary>1-based component position; 0 for a simple element.</summary>
    public int ComponentPosition { get; init; }

    /// <summary>1-based repetition; 0 when the element does not repeat.</summary>
    public int Repetition { get; init; }

    /// <summary>Data element reference number from the dictionary (X12 AK402 / EDIFACT tag).</summary>
    public string? ElementReference { get; init; }

    /// <summary>Copy of the bad value (truncated), if any.</summary>
    public string? BadValue { get; init; }

    public long ByteOffset { get; init; } = -1;

    public int Line { get; init; }

    public override string ToString()
    {
        var sb = new System.Text.StringBuilder();
        if (Line > 0)
        {
            sb.Append("line ").Append(Line).Append(" (byte ").Append(ByteOffset).Append("): ");
        }

        sb.Append(Standard == EdiStandard.X12 ? "interchange " : "interchange ").Append(InterchangeControlNumber ?? "?");
        if (GroupControlNumber != null)
        {
            sb.Append(" group ").Append(GroupControlNumber);
        }

        if (SetControlNumber != null)
        {
            sb.Append(Standard == EdiStandard.X12 ? " set " : " message ").Append(SetId).Append(' ').Append(SetControlNumber);
        }

        if (SegmentPosition > 0)
        {
            sb.Append(" segment ").Append(SegmentPosition).Append(' ').Append(SegmentTag);
        }
        else if (SegmentTag != null)
        {
            sb.Append(" segment ").Append(SegmentTag);
        }

        if (ElementPosition > 0)
        {
            sb.Append(" element ").Append(ElementPosition.ToString("00", System.Globalization.CultureInfo.InvariantCulture));
            if (ComponentPosition > 0)
            {
                sb.Append('-').Append(ComponentPosition);
            }

            if (Repetition > 0)
            {
                sb.Append(" repetition ").Append(Repetition);
            }

            if (ElementReference != null)
            {
                sb.Append(" (").Append(ElementReference).Append(')');
            }
        }

        sb.Append(": ").Append(Message).Append(" [code ").Append(Code).Append(']');
        return sb.ToString();
    }
}

/// <summary>Maps error kinds to the codes of X12 (TA1, 997/999) and EDIFACT (CONTRL data element 0085).</summary>
public static class EdiErrorCodes
{
    public static EdiIssueLevel LevelOf(EdiErrorKind kind) => kind switch
    {
        <= EdiErrorKind.InvalidInterchangeHeader => EdiIssueLevel.Interchange,
        <= EdiErrorKind.GroupNotSupported => EdiIssueLevel.Group,
        <= EdiErrorKind.SetHierarchyInvalid => EdiIssueLevel.TransactionSet,
        <= EdiErrorKind.SegmentHasElementErrors => EdiIssueLevel.Segment,
        _ => EdiIssueLevel.Element,
    };

    public static string Code(EdiErrorKind kind, EdiStandard standard) => standard == EdiStandard.X12 ? X12(kind) : Edifact(kind);

    /// <summary>X12 code: TA105 for interchange, AK905 for group, AK502 for set, AK304 for segment, AK403 for element.</summary>
    public static string X12(EdiErrorKind kind) => kind switch
    {
        EdiErrorKind.InterchangeControlNumberMismatch => "001",
        EdiErrorKind.InterchangeGroupCountMismatch => "021",
        EdiErrorKind.InterchangeTrailerMissing => "023",
        EdiErrorKind.DuplicateInterchange => "025",
        EdiErrorKind.UnsupportedInterchangeVersion => "017",
        EdiErrorKind.InvalidInterchangeContent => "024",
        EdiErrorKind.InvalidInterchangeHeader => "022",
        EdiErrorKind.GroupNotSupported => "1",
        EdiErrorKind.GroupTrailerMissing => "3",
        EdiErrorKind.GroupControlNumberMismatch => "4",
        EdiErrorKind.GroupSetCountMismatch => "5",
        EdiErrorKind.DuplicateGroup => "19",
        EdiErrorKind.SetNotSupported => "1",
        EdiErrorKind.SetTrailerMissing => "2",
        EdiErrorKind.SetControlNumberMismatch => "3",
        EdiErrorKind.SetSegmentCountMismatch => "4",
        EdiErrorKind.SetIdentifierInvalid => "6",
        EdiErrorKind.DuplicateSet => "23",
        EdiErrorKind.SetHierarchyInvalid => "5",
        EdiErrorKind.UnrecognizedSegment => "1",
        EdiErrorKind.UnexpectedSegment => "2",
        EdiErrorKind.MandatorySegmentMissing => "3",
        EdiErrorKind.LoopOverMaximum => "4",
        EdiErrorKind.SegmentOverMaximum => "5",
        EdiErrorKind.SegmentNotInSet => "6",
        EdiErrorKind.SegmentOutOfSequence => "7",
        EdiErrorKind.SegmentHasElementErrors => "8",
        EdiErrorKind.MandatoryElementMissing => "1",
        EdiErrorKind.ConditionalElementMissing => "2",
        EdiErrorKind.TooManyElements => "3",
        EdiErrorKind.ElementTooShort => "4",
        EdiErrorKind.ElementTooLong => "5",
        EdiErrorKind.InvalidCharacter => "6",
        EdiErrorKind.InvalidCodeValue => "7",
        EdiErrorKind.InvalidDate => "8",
        EdiErrorKind.InvalidTime => "9",
        EdiErrorKind.TooManyRepetitions => "12",
        EdiErrorKind.TooManyComponents => "13",
        EdiErrorKind.ExclusionConditionViolated => "10",
        _ => "5",
    };

    /// <summary>EDIFACT syntax error code (data element 0085) as used in CONTRL UCI/UCM/UCS/UCD.</summary>
    public static string Edifact(EdiErrorKind kind) => kind switch
    {
        EdiErrorKind.UnsupportedInterchangeVersion => "2",
        EdiErrorKind.InvalidCodeValue or EdiErrorKind.InvalidDate or EdiErrorKind.InvalidTime or EdiErrorKind.ExclusionConditionViolated => "12",
        EdiErrorKind.MandatoryElementMissing or EdiErrorKind.ConditionalElementMissing or EdiErrorKind.MandatorySegmentMissing
            or EdiErrorKind.SetTrailerMissing or EdiErrorKind.GroupTrailerMissing or EdiErrorKind.InterchangeTrailerMissing => "13",
        EdiErrorKind.SetNotSupported or EdiErrorKind.GroupNotSupported or EdiErrorKind.SetIdentifierInvalid => "14",
        EdiErrorKind.UnrecognizedSegment or EdiErrorKind.UnexpectedSegment or EdiErrorKind.SegmentNotInSet or EdiErrorKind.SegmentOutOfSequence => "15",
        EdiErrorKind.TooManyElements or EdiErrorKind.TooManyComponents => "16",
        EdiErrorKind.InvalidCharacter => "37",
        EdiErrorKind.DuplicateInterchange or EdiErrorKind.DuplicateGroup or EdiErrorKind.DuplicateSet => "26",
        EdiErrorKind.InterchangeControlNumberMismatch or EdiErrorKind.GroupControlNumberMismatch or EdiErrorKind.SetControlNumberMismatch => "28",
        EdiErrorKind.InterchangeGroupCountMismatch or EdiErrorKind.GroupSetCountMismatch or EdiErrorKind.SetSegmentCountMismatch => "29",
        EdiErrorKind.InvalidInterchangeContent => "33",
        EdiErrorKind.SegmentOverMaximum or EdiErrorKind.TooManyRepetitions => "35",
        EdiErrorKind.LoopOverMaximum => "36",
        EdiErrorKind.ElementTooLong => "39",
        EdiErrorKind.ElementTooShort => "40",
        _ => "18",
    };
}
