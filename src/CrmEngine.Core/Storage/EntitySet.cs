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
        IndexedFields = descriptor.Indexes.Where(i => i.Listed).Select(i => i.Field).ToArray();
    }

    public string EntityName => _descriptor.EntityName;

    public IReadOnlyCollection<string> IndexedFields { get; }

    private ILiteCollection<BsonDocument> Collection => _pipeline.Database.Database.GetCollection(_descriptor.CollectionName);

    private BsonMapper Mapper => _pipeline.Database.Mapper;

    public Task<T> CreateAsync(T entity, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(entity);
        cancellationToken.ThrowIfCancellationRequested();
        var input = new WriteInput<T>(_pipeline, entity);
        return _pipeline.RouteWrite(_actor, ctx => _pipeline.Create(_descriptor, input.Take(out var mapped), ctx, mapped));
    }

    /// <summary>
    /// Creates all <paramref name="entities"/> in one transaction, each through the full pipeline
    /// (validation, handlers, change feed, audit); all or nothing. The fast path for imports.
    /// </summary>
    public Task<IReadOnlyList<T>> CreateManyAsync(IEnumerable<T> entities, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(entities);
        cancellationToken.ThrowIfCancellationRequested();
        var inputs = entities.Select(e => new WriteInput<T>(_pipeline, e ?? throw new ArgumentException("The batch holds a null record.", nameof(entities)))).ToList();
        return _pipeline.RouteWrite(_actor, ctx =>
        {
            var mapped = new BsonDocument?[inputs.Count];
            var images = inputs.Select((input, i) => input.Take(out mapped[i])).ToList();
            return _pipeline.CreateMany(_descriptor, images, ctx, mapped);
        });
    }

    /// <summary>Writes per transaction of a bulk call: bounds the memory of one transaction and lets other writers in between.</summary>
    internal const int BulkTransactionSize = 4096;

    /// <summary>
    /// The batched <see cref="BulkWriteExtensions.WriteManyAsync{T}"/>: every write through the full pipeline,
    /// up to <see cref="BulkTransactionSize"/> writes per group (one transaction, one disk sync), each with its
    /// own outcome; any error of a write (not only store errors) is reported in its result. Null inside a
    /// synchronous handler, where the caller falls back to one call per write in the open transaction.
    /// </summary>
    internal async Task<IReadOnlyList<BulkWriteResult<T>>?> TryWriteManyAsync(IReadOnlyList<BulkWrite<T>> writes,
        CancellationToken cancellationToken, int transactionSize = BulkTransactionSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(transactionSize);
        cancellationToken.ThrowIfCancellationRequested();
        var results = new BulkWriteResult<T>[writes.Count];
        var ops = new List<Func<WriteContext, T>>(writes.Count);
        var positions = new List<int>(writes.Count);
        for (var i = 0; i < writes.Count; i++)
        {
            var write = writes[i];
            if (write?.Entity is null)
            {
                results[i] = new BulkWriteResult<T>(i, null, new ArgumentNullException(nameof(writes), $"Write {i} of the batch holds no record."));
                continue;
            }

            // The pipeline owns a private copy from here, as for single writes.
            var input = new WriteInput<T>(_pipeline, write.Entity);
            Func<WriteContext, T>? op = write.Operation switch
            {
                BulkOperation.Create => ctx => _pipeline.Create(_descriptor, input.Take(out var mapped), ctx, mapped),
                BulkOperation.Update => ctx => _pipeline.Update(_descriptor, input.Take(out var mapped), ctx, mapped),
                _ => null,
            };
            if (op is null)
            {
                results[i] = new BulkWriteResult<T>(i, null, new ArgumentOutOfRangeException(nameof(writes), write.Operation, $"Write {i} of the batch has an unknown operation."));
                continue;
            }

            ops.Add(op);
            positions.Add(i);
        }

        // Every chunk is queued at once, so the writer never waits for this caller between chunks.
        var batches = new List<(int Offset, Task<IReadOnlyList<WorkItem<T>>> Task)>();
        for (var offset = 0; offset < ops.Count; offset += transactionSize)
        {
            var chunk = ops.GetRange(offset, Math.Min(transactionSize, ops.Count - offset));
            var task = _pipeline.TryRouteBatch(_actor, chunk);
            if (task is null)
            {
                return null;
            }

            batches.Add((offset, task));
        }

        foreach (var (offset, task) in batches)
        {
            var parts = await task.ConfigureAwait(false);
            for (var k = 0; k < parts.Count; k++)
            {
                var index = positions[offset + k];
                var part = parts[k];
                results[index] = part.Error is null
                    ? new BulkWriteResult<T>(index, part.Result, null)
                    : new BulkWriteResult<T>(index, null, part.Error);
            }
        }

        return results;
    }

    public Task<T> UpdateAsync(T entity, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(entity);
        cancellationToken.ThrowIfCancellationRequested();
        var input = new WriteInput<T>(_pipeline, entity);
        return _pipeline.RouteWrite(_actor, ctx => _pipeline.Update(_descriptor, input.Take(out var mapped), ctx, mapped));
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
        return _pipeline.RouteRead(() => GetNow(id));
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

        if (index.Normalize(value) is null)
        {
            return Task.FromResult<IReadOnlyList<T>>([]);
        }

        return _pipeline.RouteRead(() => FindNow(index.Field, value, limit, afterId));
    }

    /// <summary>
    /// <see cref="FindAsync"/> run here and now on the calling thread (no routing): for code that already runs where
    /// the read belongs, for example inside <see cref="CrmDatabase.ReadSnapshot{T}"/> for a batch of look-ups.
    /// </summary>
    internal IReadOnlyList<T> FindNow(string field, string value, int limit = 100, string? afterId = null)
    {
        if (!_descriptor.IndexesByField.TryGetValue(field, out var index) || index.Normalize(value) is not { } key)
        {
            return [];
        }

        // Index entries are "key\u0001id": one ordered range scan over the index gives the matches in
        // id order, starting after afterId (a single BETWEEN, so one entry must satisfy both bounds).
        var low = key + IndexKeys.Separator + (afterId is null ? "" : afterId + IndexKeys.Separator);
        var high = key + (char)(IndexKeys.Separator + 1);
        var path = EntityDescriptor.IndexPath(index.Field);
        var predicate = BsonExpression.Create($"{path} ANY BETWEEN @0 AND @1", low, high);
        return Collection.Query()
            .Where(predicate)
            .Limit(limit)
            .ToEnumerable()
            .Select(d => Mapper.ToObject<T>(d))
            .ToList();
    }

    /// <summary><see cref="GetAsync"/> here and now on the calling thread (see <see cref="FindNow"/>).</summary>
    internal T? GetNow(string id) => Collection.FindById(id) is { } doc ? Mapper.ToObject<T>(doc) : null;

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

/// <summary>
/// The caller's record as the pipeline receives it: a private copy, and a fresh one for every further run.
/// A write may run again when its group is replayed after another write doomed the shared transaction;
/// the first run stamped the version and let pre-operation handlers change the image, so a replay must
/// start from the record as the caller handed it over.
/// </summary>
internal sealed class WriteInput<T> where T : class
{
    private readonly WritePipeline _pipeline;
    private readonly BsonDocument _original;
    private T? _first;

    public WriteInput(WritePipeline pipeline, T entity)
    {
        _pipeline = pipeline;
        _original = pipeline.Database.Mapper.ToDocument(entity);
        _first = pipeline.Database.Mapper.ToObject<T>(_original);
    }

    public T Take() => Take(out _);

    /// <param name="mapped">On the first run: the caller's record as BSON, which the image was read from (mapped on the
    /// caller's thread), so the writer need not map the image again when no handler changed it; the pipeline copies it
    /// and never changes it. Null on a replay.</param>
    public T Take(out BsonDocument? mapped)
    {
        mapped = _first is null ? null : _original;
        var image = _first ?? _pipeline.Database.Mapper.ToObject<T>(_original);
        _first = null;
        return image;
    }
}
