using CrmEngine.Abstractions.Model;

namespace CrmEngine.Rules.Segments;

public enum SegmentStatus { Active, Failed }

/// <summary>One customer in one segment (collection <c>rules_segment_members</c>, id <c>segment|customerId</c>).</summary>
public sealed class SegmentMember : Entity
{
    public string Segment { get; set; } = "";
    public string CustomerId { get; set; } = "";

    /// <summary>Version (hash) of the script that put the customer in.</summary>
    public string ScriptHash { get; set; } = "";
    public DateTimeOffset DecidedAt { get; set; }

    public static string IdOf(string segment, string customerId) => segment + "|" + customerId;
}

/// <summary>The state of one segment (collection <c>rules_segment_states</c>, id = segment name).</summary>
public sealed class SegmentState : Entity
{
    public string ScriptHash { get; set; } = "";
    public SegmentStatus Status { get; set; } = SegmentStatus.Active;
    public string? LastError { get; set; }
    public DateTimeOffset? LastErrorAt { get; set; }
    public int ConsecutiveFailures { get; set; }
    public DateTimeOffset? LastRebuildAt { get; set; }
    public long Members { get; set; }
    /// <summary>Hash of the script the last full rebuild ran; incremental updates follow it.</summary>
    public string? RebuiltWithHash { get; set; }
    /// <summary>The change-feed position the last full rebuild started from (later changes were not in it for sure).</summary>
    public long RebuiltFromSequence { get; set; }
    /// <summary>Full rebuilds run so far (by a new script version, a time refresh, or on request).</summary>
    public long Rebuilds { get; set; }
}

/// <summary>Every script version that ever decided something (collection <c>rules_versions</c>, id = hash).</summary>
public sealed class RuleVersion : Entity
{
    public string Name { get; set; } = "";
    public string Kind { get; set; } = "";
    public string? Path { get; set; }
    public string Code { get; set; } = "";
}

/// <summary>Where the segment service is in the change feed (collection <c>rules_cursors</c>).</summary>
public sealed class RulesCursor : Entity
{
    public long Position { get; set; }
}
