namespace CrmEngine.Edi;

/// <summary>Limits and naming for reading. The limits bound the memory a hostile file can make the reader use.</summary>
public sealed class EdiReaderOptions
{
    public static EdiReaderOptions Default { get; } = new();

    /// <summary>Name used in error messages (usually the file path).</summary>
    public string? SourceName { get; init; }

    /// <summary>Largest segment accepted, in bytes; a longer one is an <see cref="EdiException"/>.</summary>
    public int MaxSegmentLength { get; init; } = 64 * 1024;

    /// <summary>Most elements (including the tag) accepted in one segment.</summary>
    public int MaxElementsPerSegment { get; init; } = 1024;

    /// <summary>Most segments held for one transaction set / message.</summary>
    public int MaxSegmentsPerSet { get; init; } = 2_000_000;

    /// <summary>Initial read buffer size.</summary>
    public int BufferSize { get; init; } = 64 * 1024;
}
