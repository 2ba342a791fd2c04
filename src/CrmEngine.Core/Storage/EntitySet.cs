using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;
using CrmEngine.Core.Pipeline;
using LiteDB;

namespace CrmEngine.Core.Storage;

/// <summary>One collection as a store facade sees it: every write goes through the <see cref="WritePipeline"/>.</summary>
public sealed class EntitySet<T> : IEntitySet<T> where T : class, IEntity, new()
{
    private readonly WritePipeline _pipeline;
    private readonly EntityDescriptor _descriptor;
    private readonly string _actor;

    internal EntitySet(WritePipeline pipeline, EntityDescriptor descriptor, string actor)
    {
        _pipeline = pipeline;
        _descriptor = descriptor;
        _actor = actor;
        IndexedFields = descriptor.Indexes.Select(i => i.Field).ToArray();
    }

    public string EntityName => _descriptor.EntityName;

    public IReadOnlyCollection<string> IndexedFields { get; }

    private ILiteCollection<BsonDocument> Collection => _pipeline.Database.Database.GetCollection(_descriptor.CollectionName);

    private BsonMapper Mapper => _pipeline.Database.Mapper;

    public Task<T> CreateAsync(T entity, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(entity);
        cancellationToken.ThrowIfCancellationRequested();
        var image = _pipeline.Copy(entity)!;
        return _pipeline.RouteWrite(_actor, ctx => _pipeline.Create(_descriptor, image, ctx));
    }

    /// <summary>
    /// Creates all <paramref name="entities"/> in one transaction, each through the full pipeline
    /// (validation, handlers, change feed, audit); all or nothing. The fast path for imports.
    /// </summary>
    public Task<IReadOnlyList<T>> CreateManyAsync(IEnumerable<T> entities, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(entities);
        cancellationToken.ThrowIfCancellationRequested();
        var images = entities.Select(e => _pipeline.Copy(e) ?? throw new ArgumentException("The batch holds a null record.", nameof(entities))).ToList();
        return _pipeline.RouteWrite(_actor, ctx => _pipeline.CreateMany(_descriptor, images, ctx));
    }

    public Task<T> UpdateAsync(T entity, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(entity);
        cancellationToken.ThrowIfCancellationRequested();
        var image = _pipeline.Copy(entity)!;
        return _pipeline.RouteWrite(_actor, ctx => _pipeline.Update(_descriptor, image, ctx));
    }

    public Task DeleteAsync(string id, long? expectedVersion = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(id);
        cancellationToken.ThrowIfCancellationRequested();
        return _pipeline.RouteWrite(_actor, ctx => _pipeline.Delete<T>(_descriptor, id, expectedVersion, ctx));
    }

    public Task<T?> GetAsync(string id, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(id);
        cancellationToken.ThrowIfCancellationRequested();
        return _pipeline.RouteRead(() => Collection.FindById(id) is { } doc ? Mapper.ToObject<T>(doc) : null);
    }

    public Task<IReadOnlyList<T>> FindAsync(string field, string value, int limit = 100, string? afterId = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(field);
        ArgumentNullException.ThrowIfNull(value);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        cancellationToken.ThrowIfCancellationRequested();
        if (!_descriptor.IndexesByField.TryGetValue(field, out var index))
        {
            throw new ArgumentException(IndexedFields.Count == 0
                ? $"'{EntityName}' has no look-ups; '{field}' cannot be searched. Use ListAsync."
                : $"'{field}' is not a look-up of '{EntityName}'. Use one of: {string.Join(", ", IndexedFields)}.", nameof(field));
        }

        var key = index.Normalize(value);
        if (key is null)
        {
            return Task.FromResult<IReadOnlyList<T>>([]);
        }

        // Index entries are "key\u0001id": one ordered range scan over the index gives the matches in
        // id order, starting after afterId (a single BETWEEN, so one entry must satisfy both bounds).
        var low = key + IndexKeys.Separator + (afterId is null ? "" : afterId + IndexKeys.Separator);
        var high = key + (char)(IndexKeys.Separator + 1);
        var path = EntityDescriptor.IndexPath(index.Field);
        var predicate = BsonExpression.Create($"{path} ANY BETWEEN @0 AND @1", low, high);
        return _pipeline.RouteRead<IReadOnlyList<T>>(() => Collection.Query()
            .Where(predicate)
            .Limit(limit)
            .ToEnumerable()
            .Select(d => Mapper.ToObject<T>(d))
            .ToList());
    }

    public Task<IReadOnlyList<T>> ListAsync(int limit = 100, string? afterId = null, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        cancellationToken.ThrowIfCancellationRequested();
        return _pipeline.RouteRead<IReadOnlyList<T>>(() => Collection.Query()
            .Where(Query.GT("_id", afterId ?? ""))
            .Limit(limit)
            .ToEnumerable()
            .Select(d => Mapper.ToObject<T>(d))
            .ToList());
    }

    public Task<long> CountAsync(CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return _pipeline.RouteRead(() => Collection.LongCount());
    }
}
