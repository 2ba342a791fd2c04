using System.Text;

namespace CrmEngine.Edi;

/// <summary>Character sets of the interchange: EDIFACT syntax identifiers and the X12 basic/extended sets.</summary>
public static class EdiEncodings
{
    private static readonly Encoding Utf8 = new UTF8Encoding(false, false);

    /// <summary>
    /// The encoding for an EDIFACT syntax identifier (UNB 0001), e.g. UNOA, UNOB, UNOC, UNOW, UNOY. Code list 0001
    /// defines UNOW as "ISO 10646-1 octet with code extension technique to support UTF-8" and UNOY as "ISO 10646-1
    /// octet without code extension technique": both are read and written as UTF-8.
    /// </summary>
    public static Encoding ForSyntax(string? syntaxIdentifier) => (syntaxIdentifier ?? string.Empty).ToUpperInvariant() switch
    {
        "UNOA" or "UNOB" => Encoding.ASCII,
        "UNOC" => Encoding.Latin1,
        "UNOW" or "UNOY" => Utf8,
        _ => Encoding.Latin1,
    };

    /// <summary>X12 has no charset field: the extended character set is read as UTF-8 (ASCII is a subset).</summary>
    public static Encoding X12 => Utf8;

    /// <summary>True when <paramref name="syntaxIdentifier"/> is one of the supported EDIFACT syntax identifiers.</summary>
    public static bool IsSupportedSyntax(string syntaxIdentifier) => syntaxIdentifier is "UNOA" or "UNOB" or "UNOC" or "UNOW" or "UNOY" or "UNOD" or "UNOE" or "UNOF";

    /// <summary>Checks bytes against a syntax level: UNOA allows upper case letters, digits and a few marks; UNOB adds lower case.</summary>
    internal static bool IsAllowed(byte b, string syntax)
    {
        if (syntax == "UNOA")
        {
            return b is (>= (byte)'A' and <= (byte)'Z') or (>= (byte)'0' and <= (byte)'9') or (byte)' ' or (byte)'.' or (byte)',' or (byte)'-' or (byte)'(' or (byte)')'
                or (byte)'/' or (byte)'=' or (byte)'\'' or (byte)'+' or (byte)':' or (byte)'?' or (byte)'!' or (byte)'"' or (byte)'%' or (byte)'&' or (byte)'*' or (byte)';' or (byte)'<' or (byte)'>';
        }

        if (syntax == "UNOB")
        {
            return b < 0x80;
        }

        return true;
    }
}
