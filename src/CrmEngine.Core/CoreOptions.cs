using System.ComponentModel.DataAnnotations;

namespace CrmEngine.Core;

/// <summary>Section <c>Store</c>.</summary>
public sealed class StoreOptions
{
    public const string Section = "Store";

    /// <summary>Folder of the database file; relative paths are taken from the content root.</summary>
    [Required(AllowEmptyStrings = false)]
    public string DataDirectory { get; set; } = "data";

    [Required(AllowEmptyStrings = false)]
    [RegularExpression(@"^[^/\\]+\.db$", ErrorMessage = "Store:FileName must be a plain file name ending in .db")]
    public string FileName { get; set; } = "crm.db";

    /// <summary>
    /// Longest wait for LiteDB's journal writer after a commit; past it (or at once when the writer
    /// reports a disk error) the writes of that commit fail instead of being acknowledged.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:10:00")]
    public TimeSpan DiskSyncTimeout { get; set; } = TimeSpan.FromSeconds(30);
}

/// <summary>Section <c>Pipeline</c>.</summary>
public sealed class PipelineOptions
{
    public const string Section = "Pipeline";

    /// <summary>How deep handlers may trigger writes that trigger handlers.</summary>
    [Range(1, 64)]
    public int MaxDepth { get; set; } = 8;

    /// <summary>Budget of one handler call; past it the handler is abandoned and the write fails.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:10:00")]
    public TimeSpan HandlerTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Tries of an asynchronous handler before its delivery is parked with the error.</summary>
    [Range(1, 100)]
    public int AsyncMaxAttempts { get; set; } = 8;

    /// <summary>First retry delay of an asynchronous handler; doubles per try.</summary>
    [Range(typeof(TimeSpan), "00:00:00.001", "01:00:00")]
    public TimeSpan AsyncRetryBaseDelay { get; set; } = TimeSpan.FromSeconds(2);
}
