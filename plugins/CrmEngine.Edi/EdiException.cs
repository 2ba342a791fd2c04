namespace CrmEngine.Edi;

/// <summary>
/// The one error type the codec throws: input that cannot be read as EDI at all
/// (empty, not EDI, truncated, malformed envelope header, limits exceeded).
/// Validation findings are never thrown; they are reported as <see cref="EdiIssue"/>.
/// </summary>
public sealed class EdiException : Exception
{
    public EdiException() : this("EDI error") { }

    public EdiException(string message) : base(message) { }

    public EdiException(string message, Exception innerException) : base(message, innerException) { }

    public EdiException(string message, string? source, long byteOffset, int line, int column)
        : base(Format(message, source, byteOffset, line, column))
    {
        SourceName = source;
        ByteOffset = byteOffset;
        Line = line;
        Column = column;
        Reason = message;
    }

    /// <summary>File or stream name given to the reader, if any.</summary>
    public string? SourceName { get; }

    /// <summary>Zero-based byte offset in the input where the problem was found (-1 if unknown).</summary>
    public long ByteOffset { get; } = -1;

    /// <summary>One-based line (counted by LF) of the problem, 0 if unknown.</summary>
    public int Line { get; }

    /// <summary>One-based column (bytes) of the problem, 0 if unknown.</summary>
    public int Column { get; }

    /// <summary>The message without the position prefix.</summary>
    public string? Reason { get; }

    private static string Format(string message, string? source, long offset, int line, int column)
        => $"{source ?? "input"}: line {line}, column {column} (byte {offset}): {message}";
}
