using System.Globalization;
using CrmEngine.Abstractions.Store;
using LiteDB;

namespace CrmEngine.Core.Storage;

/// <summary>Reads the <c>_changes</c> collection: one record per committed write, gap-free sequence.</summary>
public sealed class ChangeFeed : IChangeFeed
{
    private readonly CrmDatabase _db;

    public ChangeFeed(CrmDatabase database) => _db = database ?? throw new ArgumentNullException(nameof(database));

    public Task<IReadOnlyList<ChangeRecord>> ReadAsync(long afterSequence, int limit = 1000, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        cancellationToken.ThrowIfCancellationRequested();
        // Only committed changes are visible to readers off the writer thread (LiteDB snapshot reads).
        IReadOnlyList<ChangeRecord> records = _db.Database.GetCollection(CrmDatabase.ChangesCollection)
            .Find(Query.GT("_id", afterSequence), 0, limit)
            .Select(d => new ChangeRecord(
                d["_id"].AsInt64,
                d["entity"].AsString,
                d["entityId"].AsString,
                Enum.Parse<ChangeOperation>(d["op"].AsString),
                d["version"].AsInt64,
                DateTimeOffset.Parse(d["at"].AsString, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind),
                d["actor"].AsString))
            .ToList();
        return Task.FromResult(records);
    }

    public Task<long> LastSequenceAsync(CancellationToken cancellationToken = default) =>
        Task.FromResult(_db.ReadLastSequence());
}

/// <summary>Reads the <c>_audit</c> collection: field-level before/after per write, with the actor.</summary>
public sealed class AuditLog : IAuditLog
{
    private readonly CrmDatabase _db;

    public AuditLog(CrmDatabase database) => _db = database ?? throw new ArgumentNullException(nameof(database));

    /// <summary>
    /// Audit entries are keyed "entity\u0001id\u0001sequence" (sequence zero-padded): the primary key
    /// alone gives one record's history in order, with no second index to maintain on every write.
    /// </summary>
    internal static string Key(string entity, string id, long sequence) =>
        string.Concat(Prefix(entity, id), sequence.ToString("D19", CultureInfo.InvariantCulture));

    private static string Prefix(string entity, string id) => entity + "\u0001" + id + "\u0001";

    public Task<IReadOnlyList<AuditEntry>> ForEntityAsync(string entity, string entityId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(entity);
        ArgumentException.ThrowIfNullOrEmpty(entityId);
        cancellationToken.ThrowIfCancellationRequested();
        IReadOnlyList<AuditEntry> entries = _db.Database.GetCollection(CrmDatabase.AuditCollection)
            .Find(Query.Between("_id", Prefix(entity, entityId), entity + "\u0001" + entityId + "\u0002"))
            .Select(d => new AuditEntry(
                d["seq"].AsInt64,
                d["entity"].AsString,
                d["entityId"].AsString,
                Enum.Parse<ChangeOperation>(d["op"].AsString),
                DateTimeOffset.Parse(d["at"].AsString, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind),
                d["actor"].AsString,
                AuditDiff.ChangesOf(d)))
            .ToList();
        return Task.FromResult(entries);
    }
}
