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

    internal static string Key(string entity, string id) => entity + "\u0001" + id;

    public Task<IReadOnlyList<AuditEntry>> ForEntityAsync(string entity, string entityId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(entity);
        ArgumentException.ThrowIfNullOrEmpty(entityId);
        cancellationToken.ThrowIfCancellationRequested();
        IReadOnlyList<AuditEntry> entries = _db.Database.GetCollection(CrmDatabase.AuditCollection)
            .Find(Query.EQ("key", Key(entity, entityId)))
            .OrderBy(d => d["_id"].AsInt64)
            .Select(d => new AuditEntry(
                d["_id"].AsInt64,
                d["entity"].AsString,
                d["entityId"].AsString,
                Enum.Parse<ChangeOperation>(d["op"].AsString),
                DateTimeOffset.Parse(d["at"].AsString, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind),
                d["actor"].AsString,
                d["changes"].AsArray.Select(c => new FieldChange(
                    c["f"].AsString,
                    c["b"].IsNull ? null : c["b"].AsString,
                    c["a"].IsNull ? null : c["a"].AsString)).ToList()))
            .ToList();
        return Task.FromResult(entries);
    }
}
