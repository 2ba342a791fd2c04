namespace CrmEngine.Abstractions.Store;

public enum ChangeOperation { Create, Update, Delete }

/// <summary>One committed write, in commit order. Sequence numbers are gap-free and never reused.</summary>
public sealed record ChangeRecord(
    long Sequence,
    string Entity,
    string EntityId,
    ChangeOperation Operation,
    long Version,
    DateTimeOffset At,
    string Actor);

public interface IChangeFeed
{
    /// <summary>Changes with a sequence greater than <paramref name="afterSequence"/>, oldest first.</summary>
    Task<IReadOnlyList<ChangeRecord>> ReadAsync(long afterSequence, int limit = 1000, CancellationToken cancellationToken = default);

    /// <summary>The sequence of the newest committed change (0 when the store is empty).</summary>
    Task<long> LastSequenceAsync(CancellationToken cancellationToken = default);
}

/// <summary>One field's value before and after a write, as JSON text (null when absent).</summary>
public sealed record FieldChange(string Field, string? Before, string? After);

/// <summary>Who changed what, field by field. Written in the same transaction as the change.</summary>
public sealed record AuditEntry(
    long Sequence,
    string Entity,
    string EntityId,
    ChangeOperation Operation,
    DateTimeOffset At,
    string Actor,
    IReadOnlyList<FieldChange> Changes);

public interface IAuditLog
{
    /// <summary>The history of one record, oldest first.</summary>
    Task<IReadOnlyList<AuditEntry>> ForEntityAsync(string entity, string entityId, CancellationToken cancellationToken = default);
}
