using System.ComponentModel.DataAnnotations;

namespace CrmEngine.DataExchange;

/// <summary>What happens when a rule finds a possible duplicate.</summary>
public enum DuplicateAction
{
    /// <summary>No check for this rule.</summary>
    Off,
    /// <summary>The write is refused with a validation error naming the existing customer.</summary>
    Block,
    /// <summary>The write goes in, tagged <c>possible-duplicate</c> with the other id in custom field <c>possibleDuplicateOf</c>.</summary>
    Warn,
    /// <summary>Import only: the row is merged into the existing customer (on a plain create this acts as Warn).</summary>
    Merge,
}

/// <summary>Section <c>DataExchange</c>.</summary>
public sealed class DataExchangeOptions
{
    public const string Section = "DataExchange";

    /// <summary>Rows written per bulk call (one pipeline batch).</summary>
    [Range(1, 50_000)]
    public int ImportBatchSize { get; set; } = 2000;

    public DuplicateOptions Duplicates { get; set; } = new();
}

/// <summary>Section <c>DataExchange:Duplicates</c>: one action per rule and the fuzzy threshold.</summary>
public sealed class DuplicateOptions
{
    /// <summary>Exact match on a normalised e-mail address (trimmed, lower case).</summary>
    public DuplicateAction Email { get; set; } = DuplicateAction.Block;

    /// <summary>Exact match on a normalised phone number (digits and a leading plus).</summary>
    public DuplicateAction Phone { get; set; } = DuplicateAction.Warn;

    /// <summary>Fuzzy match on the name within the same postcode (or the same city when a postcode is missing).</summary>
    public DuplicateAction Name { get; set; } = DuplicateAction.Warn;

    /// <summary>Jaro-Winkler similarity (0..1) of the token-sorted normalised names at or above which two names match.</summary>
    [Range(0.5, 1.0)]
    public double NameThreshold { get; set; } = 0.92;

    /// <summary>Blocks larger than this are not compared pairwise by <c>crm duplicates scan</c> (reported as skipped).</summary>
    [Range(2, 100_000)]
    public int ScanMaxBlockSize { get; set; } = 500;
}
