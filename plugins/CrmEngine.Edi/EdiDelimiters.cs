namespace CrmEngine.Edi;

/// <summary>The two EDI standards the codec reads and writes.</summary>
public enum EdiStandard
{
    X12,
    Edifact,
}

/// <summary>Service characters of one interchange. A value of 0 means "not used".</summary>
public readonly record struct EdiDelimiters(byte Element, byte Component, byte Repetition, byte Segment, byte Release, byte Decimal)
{
    /// <summary>The usual X12 choice: <c>* : ^ ~</c>.</summary>
    public static EdiDelimiters X12Default { get; } = new((byte)'*', (byte)':', (byte)'^', (byte)'~', 0, (byte)'.');

    /// <summary>EDIFACT syntax level A defaults (used when no UNA is present): <c>+ : ' ?</c>.</summary>
    public static EdiDelimiters EdifactDefault { get; } = new((byte)'+', (byte)':', 0, (byte)'\'', (byte)'?', (byte)'.');

    /// <summary>EDIFACT syntax level B defaults (UNOB without UNA): IS3/IS4/US/FS control characters.</summary>
    public static EdiDelimiters EdifactLevelB { get; } = new(0x1D, 0x1F, 0, 0x1C, 0, (byte)'.');

    public override string ToString()
        => $"element={Show(Element)} component={Show(Component)} repetition={Show(Repetition)} segment={Show(Segment)} release={Show(Release)}";

    private static string Show(byte b) => b switch
    {
        0 => "none",
        (byte)'\r' => "\\r",
        (byte)'\n' => "\\n",
        < 0x20 => $"0x{b:X2}",
        _ => ((char)b).ToString(),
    };

    internal bool IsSpecial(byte b) => b != 0 && (b == Element || b == Component || b == Repetition || b == Segment || b == Release);
}
