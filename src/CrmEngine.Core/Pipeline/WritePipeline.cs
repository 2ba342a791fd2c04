using System.Diagnostics;
using System.Globalization;
using System.Runtime.ExceptionServices;
using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Pipeline;
using CrmEngine.Abstractions.Store;
using CrmEngine.Core.Storage;
using LiteDB;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace CrmEngine.Core.Pipeline;

/// <summary>Who writes, and the chain of writes that led here (outermost first).</summary>
internal sealed record WriteContext(string Actor, IReadOnlyList<string> Chain);

/// <summary>
/// The one event pipeline every write goes through, on the writer thread, in one transaction:
/// validate → pre-operation → write (optimistic concurrency) → change feed + audit + durable async
/// deliveries → post-operation → commit. See <see cref="WriteScope"/> for how handlers run.
/// </summary>
public sealed class WritePipeline
{
    private readonly CrmDatabase _db;
    private readonly WriteHandlerRegistry _registry;
    private readonly PipelineOptions _options;
    private readonly Func<IEnumerable<IHandlerFaultObserver>> _observerSource;
    private readonly ILogger _logger;
    private IHandlerFaultObserver[]? _observers;

    /// <summary>How long a handler may wait for a thread-pool thread before its budget starts.</summary>
    private static readonly TimeSpan StartGrace = TimeSpan.FromSeconds(30);

    public WritePipeline(CrmDatabase database, WriteHandlerRegistry registry, PipelineOptions options,
        Func<IEnumerable<IHandlerFaultObserver>>? observers = null, ILogger<WritePipeline>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(database);
        ArgumentNullException.ThrowIfNull(registry);
        ArgumentNullException.ThrowIfNull(options);
        _db = database;
        _registry = registry;
        _options = options;
        _observerSource = observers ?? (() => []);
        _logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    public CrmDatabase Database => _db;

    public WriteHandlerRegistry Registry => _registry;

    public PipelineOptions Options => _options;

    /// <summary>Raised after a commit that created async deliveries (the dispatcher wakes on it).</summary>
    internal event Action? DeliveriesCommitted;

    internal IHandlerFaultObserver[] Observers => _observers ??= _observerSource().ToArray();

    /// <summary>The actor recorded for writes made by handlers of <paramref name="ownerId"/>.</summary>
    public static string ActorOf(string ownerId) =>
        ownerId.Contains(':', StringComparison.Ordinal) ? ownerId
        : ownerId is "core" or "rules" or "system" ? "system:" + ownerId
        : "plugin:" + ownerId;

    /// <summary>A new id: a version-7 UUID as 32 hex digits that sorts by creation time (see <see cref="SortableId"/>).</summary>
    public static string NewId() => SortableId.Next();

    // ---------------------------------------------------------------- routing

    /// <summary>
    /// Runs a write. Inside a synchronous handler it joins the open transaction (queued to the
    /// pumping writer thread); otherwise it is a new transaction on the writer queue.
    /// </summary>
    internal Task<TResult> RouteWrite<TResult>(string actor, Func<WriteContext, TResult> op)
    {
        var scope = WriteScope.Current;
        if (scope is not null && ReferenceEquals(scope.Database, _db))
        {
            scope.EnsureOpen();
            var context = new WriteContext(scope.Actor, scope.Chain);
            if (scope.InTransaction)
            {
                return scope.Call(() => RunNested(() => op(context)));
            }

            return _db.WriteAsync(tx => Tracked(tx, () => op(context)));
        }

        return _db.WriteAsync(tx => Tracked(tx, () => op(new WriteContext(actor, []))));
    }

    /// <summary>
    /// Runs many writes as one batch on the writer queue (one group: one transaction, one disk sync), each with
    /// its own outcome. Null inside a synchronous handler: there the writes join the open transaction one by one.
    /// </summary>
    internal Task<IReadOnlyList<WorkItem<TResult>>>? TryRouteBatch<TResult>(string actor, IReadOnlyList<Func<WriteContext, TResult>> ops)
    {
        var context = new WriteContext(actor, []);
        var scope = WriteScope.Current;
        if (scope is not null && ReferenceEquals(scope.Database, _db))
        {
            scope.EnsureOpen();
            if (scope.InTransaction)
            {
                return null;
            }

            context = new WriteContext(scope.Actor, scope.Chain);
        }

        var works = new Func<WriteTransaction, TResult>[ops.Count];
        for (var i = 0; i < works.Length; i++)
        {
            var op = ops[i];
            works[i] = tx => Tracked(tx, () => op(context));
        }

        return _db.WriteBatchAsync(works);
    }

    private static TResult Tracked<TResult>(WriteTransaction tx, Func<TResult> op)
    {
        tx.TracksModifications = true;
        return op();
    }

    /// <summary>Runs a read; inside a synchronous handler it runs in the open transaction (sees its writes).</summary>
    internal Task<TResult> RouteRead<TResult>(Func<TResult> read)
    {
        var scope = WriteScope.Current;
        if (scope is not null && ReferenceEquals(scope.Database, _db) && scope.InTransaction)
        {
            return scope.Call(read);
        }

        if (scope is not null && ReferenceEquals(scope.Database, _db))
        {
            scope.EnsureOpen();
        }

        return Task.FromResult(read());
    }

    private TResult RunNested<TResult>(Func<TResult> op)
    {
        var tx = _db.CurrentTransaction ?? throw new InvalidOperationException("No open transaction for a nested write.");
        var before = tx.Modifications;
        try
        {
            return op();
        }
        catch (Exception ex)
        {
            if (tx.Modifications != before)
            {
                // Part of the failed nested write is already in the transaction and LiteDB has no
                // savepoints: the whole write must roll back even if the handler swallows this.
                tx.Doom(ex);
            }

            throw;
        }
    }

    // ---------------------------------------------------------------- the pipeline

    internal T Create<T>(EntityDescriptor d, T entity, WriteContext ctx, BsonDocument? mapped = null) where T : class, IEntity, new()
    {
        ArgumentNullException.ThrowIfNull(entity);
        var generated = string.IsNullOrEmpty(entity.Id);
        var id = generated ? NewId() : entity.Id;
        return Write(d, ChangeOperation.Create, entity, id, null, ctx, checkExisting: !generated, mapped)!;
    }

    internal T Update<T>(EntityDescriptor d, T entity, WriteContext ctx, BsonDocument? mapped = null) where T : class, IEntity, new()
    {
        ArgumentNullException.ThrowIfNull(entity);
        if (string.IsNullOrEmpty(entity.Id))
        {
            throw new ValidationException(d.EntityName, "Id", "is required to update a record");
        }

        return Write(d, ChangeOperation.Update, entity, entity.Id, entity.Version, ctx, checkExisting: true, mapped)!;
    }

    internal bool Delete<T>(EntityDescriptor d, string id, long? expectedVersion, WriteContext ctx) where T : class, IEntity, new()
    {
        ArgumentException.ThrowIfNullOrEmpty(id);
        Write<T>(d, ChangeOperation.Delete, null, id, expectedVersion, ctx, checkExisting: true);
        return true;
    }

    private T? Write<T>(EntityDescriptor d, ChangeOperation op, T? input, string id, long? expectedVersion, WriteContext ctx,
        bool checkExisting, BsonDocument? mapped = null) where T : class, IEntity, new()
    {
        var tx = _db.CurrentTransaction ?? throw new InvalidOperationException("Writes run on the writer thread inside a transaction.");
        var entry = $"{d.EntityName}:{op.ToString().ToLowerInvariant()}:{id}";
        var chain = new List<string>(ctx.Chain.Count + 1);
        chain.AddRange(ctx.Chain);
        chain.Add(entry);
        if (chain.Count > _options.MaxDepth)
        {
            throw new PipelineDepthException(_options.MaxDepth, chain);
        }

        var col = _db.Database.GetCollection(d.CollectionName);
        var beforeDoc = checkExisting ? col.FindById(id) : null;
        if (op == ChangeOperation.Create && beforeDoc is not null)
        {
            throw new ConcurrencyException($"{d.EntityName} '{id}' already exists; it cannot be created again.");
        }

        if (op != ChangeOperation.Create)
        {
            if (beforeDoc is null)
            {
                throw new EntityNotFoundException(d.EntityName, id);
            }

            var stored = beforeDoc["Version"].AsInt64;
            if (expectedVersion is { } expected && expected != stored)
            {
                throw new ConcurrencyException(d.EntityName, id, expected, stored);
            }
        }

        var now = _db.TimeProvider.GetUtcNow();
        var before = beforeDoc is null ? null : _db.Mapper.ToObject<T>(beforeDoc);
        // The caller (EntitySet) hands over a private copy: the pipeline owns it from here.
        var after = input;
        if (after is not null)
        {
            Stamp(after, id, before, now);
        }

        // 1. validate: core checks, then Validate handlers; every error is collected.
        var validation = new ValidationContext(Exists);
        if (after is not null)
        {
            d.Validate?.Invoke(after, validation);
        }

        foreach (var h in _registry.For(d.EntityName, PipelineStage.Validate))
        {
            if (!h.Applies(op, ctx.Actor))
            {
                continue;
            }

            var e = new WriteEvent<T>(d.EntityName, id, op, Copy(before), Copy(after), PipelineStage.Validate, ctx.Actor, chain, 0);
            Invoke(h, e, entry);
            validation.Errors.AddRange(e.Errors);
        }

        if (validation.Errors.Count > 0)
        {
            throw new ValidationException(d.EntityName, validation.Errors);
        }

        // 2. pre-operation: handlers may change After; the engine-owned fields are re-stamped and re-checked.
        var pre = Wanted(_registry.For(d.EntityName, PipelineStage.PreOperation), op, ctx.Actor);
        if (pre.Count > 0)
        {
            foreach (var h in pre)
            {
                Invoke(h, new WriteEvent<T>(d.EntityName, id, op, Copy(before), after, PipelineStage.PreOperation, ctx.Actor, chain, 0), entry);
            }

            if (after is not null)
            {
                Stamp(after, id, before, now);
                var recheck = new ValidationContext(Exists);
                d.Validate?.Invoke(after, recheck);
                if (recheck.Errors.Count > 0)
                {
                    throw new ValidationException(d.EntityName,
                        recheck.Errors.Select(e => e with { Message = e.Message + " (after pre-operation handlers)" }).ToList());
                }
            }
        }

        // 3. write, with the change record, the audit entry and the async deliveries in the same transaction.
        // Counted before the change: a failure from here on is never taken for a clean refusal.
        tx.Modifications++;
        BsonDocument? afterDoc = null;
        if (after is not null)
        {
            // No pre-operation handler ran: the image is the caller's record plus the stamped fields, so the BSON the
            // caller's thread already made is reused (mapping on the writer thread, the bottleneck of bulk writes, saved).
            afterDoc = mapped is not null && pre.Count == 0 ? Restamped(d, mapped, after) : ToDocument(d, after);
            if (op == ChangeOperation.Create)
            {
                col.Insert(afterDoc);
            }
            else
            {
                col.Update(afterDoc);
            }
        }
        else
        {
            col.Delete(id);
        }

        var version = after?.Version ?? (before!.Version + 1);
        var seq = _db.NextSequence();
        var at = now.ToString("O", CultureInfo.InvariantCulture);
        _db.Database.GetCollection(CrmDatabase.ChangesCollection).Insert(new BsonDocument
        {
            ["_id"] = seq,
            ["entity"] = d.EntityName,
            ["entityId"] = id,
            ["op"] = op.ToString(),
            ["version"] = version,
            ["at"] = at,
            ["actor"] = ctx.Actor,
        });

        var audit = new BsonDocument
        {
            ["_id"] = AuditLog.Key(d.EntityName, id, seq),
            ["seq"] = seq,
            ["entity"] = d.EntityName,
            ["entityId"] = id,
            ["op"] = op.ToString(),
            ["at"] = at,
            ["actor"] = ctx.Actor,
        };
        if (op == ChangeOperation.Create && afterDoc is not null)
        {
            // A create keeps its image once instead of a diff against nothing (AuditDiff.ChangesOf reads both shapes).
            audit["after"] = WithoutIndex(afterDoc);
        }
        else
        {
            audit["changes"] = AuditDiff.ToBson(AuditDiff.Compute(beforeDoc, afterDoc));
        }

        _db.Database.GetCollection(CrmDatabase.AuditCollection).Insert(audit);

        var asyncHandlers = Wanted(_registry.For(d.EntityName, PipelineStage.Async), op, ctx.Actor);
        if (asyncHandlers.Count > 0)
        {
            var deliveries = _db.Database.GetCollection(CrmDatabase.DeliveriesCollection);
            foreach (var h in asyncHandlers)
            {
                deliveries.Insert(AsyncDeliveryDispatcher.NewDelivery(seq, d.EntityName, id, op, h, ctx.Actor, chain,
                    WithoutIndex(beforeDoc), WithoutIndex(afterDoc), now));
            }

            tx.AfterCommit(() => DeliveriesCommitted?.Invoke());
        }

        // 4. post-operation: same transaction; a throw rolls everything back.
        foreach (var h in Wanted(_registry.For(d.EntityName, PipelineStage.PostOperation), op, ctx.Actor))
        {
            Invoke(h, new WriteEvent<T>(d.EntityName, id, op, Copy(before), Copy(after), PipelineStage.PostOperation, ctx.Actor, chain, seq), entry);
        }

        return after;
    }

    /// <summary>Creates many records in one transaction, each through the full pipeline (fast bulk path).</summary>
    internal IReadOnlyList<T> CreateMany<T>(EntityDescriptor d, IReadOnlyList<T> entities, WriteContext ctx,
        IReadOnlyList<BsonDocument?>? mapped = null) where T : class, IEntity, new()
    {
        var result = new List<T>(entities.Count);
        for (var i = 0; i < entities.Count; i++)
        {
            try
            {
                result.Add(Create(d, entities[i], ctx, mapped?[i]));
            }
            catch (StoreException ex)
            {
                throw new StoreException($"Record {i} of the batch was refused; nothing of the batch was written. {ex.Message}", ex);
            }
        }

        return result;
    }

    /// <summary>The handlers of a stage that want this write (most want all: then the list itself, no copy).</summary>
    private static IReadOnlyList<HandlerRegistration> Wanted(IReadOnlyList<HandlerRegistration> handlers, ChangeOperation op, string actor)
    {
        for (var i = 0; i < handlers.Count; i++)
        {
            if (!handlers[i].Applies(op, actor))
            {
                return handlers.Where(h => h.Applies(op, actor)).ToList();
            }
        }

        return handlers;
    }

    private static BsonDocument? WithoutIndex(BsonDocument? doc)
    {
        if (doc is null || !doc.ContainsKey(EntityDescriptor.LookUpMember))
        {
            return doc;
        }

        var copy = new BsonDocument();
        foreach (var (key, value) in doc)
        {
            if (key != EntityDescriptor.LookUpMember)
            {
                copy[key] = value;
            }
        }

        return copy;
    }

    private bool Exists(string collection, string id) => _db.Database.GetCollection(collection).FindById(id) is not null;

    private static void Stamp<T>(T after, string id, T? before, DateTimeOffset now) where T : class, IEntity
    {
        after.Id = id;
        after.Version = (before?.Version ?? 0) + 1;
        after.CreatedAt = before?.CreatedAt ?? now;
        after.UpdatedAt = now;
    }

    internal T? Copy<T>(T? value) where T : class => value is null ? null : _db.Mapper.ToObject<T>(_db.Mapper.ToDocument(value));

    internal BsonDocument ToDocument<T>(EntityDescriptor d, T entity) where T : class, IEntity =>
        WithLookUpKeys(d, entity, _db.Mapper.ToDocument(entity));

    /// <summary>
    /// The stored document of <paramref name="entity"/> built from <paramref name="mapped"/> (the same record mapped before
    /// <see cref="Stamp"/>): a copy with the four stamped fields set as the mapper writes them; <paramref name="mapped"/>
    /// stays as it was (a replay maps it again).
    /// </summary>
    private BsonDocument Restamped<T>(EntityDescriptor d, BsonDocument mapped, T entity) where T : class, IEntity
    {
        var doc = new BsonDocument();
        foreach (var (key, value) in mapped)
        {
            doc[key] = value;
        }

        doc["_id"] = entity.Id;
        doc[nameof(IEntity.Version)] = entity.Version;
        doc[nameof(IEntity.CreatedAt)] = _db.Mapper.Serialize(entity.CreatedAt);
        doc[nameof(IEntity.UpdatedAt)] = _db.Mapper.Serialize(entity.UpdatedAt);
        return WithLookUpKeys(d, entity, doc);
    }

    private static BsonDocument WithLookUpKeys<T>(EntityDescriptor d, T entity, BsonDocument doc) where T : class, IEntity
    {
        if (d.LookUpKeys(entity) is { } ix)
        {
            doc[EntityDescriptor.LookUpMember] = ix;
        }

        return doc;
    }

    // ---------------------------------------------------------------- handler isolation

    /// <summary>
    /// Runs one synchronous-stage handler off the writer thread under its time budget while this
    /// (writer) thread pumps the store calls it makes. Outcome is reported to the fault observers.
    /// </summary>
    private void Invoke<T>(HandlerRegistration h, WriteEvent<T> e, string write) where T : class, IEntity
    {
        if (!h.EntityType.IsAssignableFrom(typeof(T)))
        {
            Fail(h, write, new InvalidOperationException(
                $"the handler takes {h.EntityType.Name} but '{h.EntityName}' holds {typeof(T).Name}"));
        }

        var scope = new WriteScope(_db, ActorOf(h.OwnerId), e.Chain, h.HandlerName, inTransaction: true);
        var cts = new CancellationTokenSource();
        var task = Task.Run(() =>
        {
            scope.MarkStarted();
            WriteScope.Current = scope;
            return h.Invoke(e, cts.Token);
        });
        task.ContinueWith(static (_, s) => ((WriteScope)s!).Wake(), scope, CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

        // The budget counts from the moment the handler starts running (a busy thread pool must not
        // make a good handler time out) and excludes the time spent running its nested store calls.
        var budget = _options.HandlerTimeout;
        var startGrace = budget + StartGrace;
        var waited = TimeSpan.Zero;
        var queued = Stopwatch.GetTimestamp();
        var timedOut = false;
        while (true)
        {
            while (scope.TryRunNext())
            {
                // Nested store calls run here, inline, inside the open transaction.
            }

            if (task.IsCompleted)
            {
                break;
            }

            var started = scope.Started;
            var remaining = started ? budget - waited : startGrace - Stopwatch.GetElapsedTime(queued);
            if (remaining <= TimeSpan.Zero)
            {
                timedOut = true;
                break;
            }

            var start = Stopwatch.GetTimestamp();
            scope.Wait(started ? remaining : TimeSpan.FromMilliseconds(Math.Min(remaining.TotalMilliseconds, 50)));
            if (started)
            {
                waited += Stopwatch.GetElapsedTime(start);
            }
        }

        scope.Close(abandoned: timedOut);
        if (timedOut)
        {
            // Abandon: cancellation callbacks are plugin code too, so they run off this thread.
            _ = cts.CancelAsync();
            _ = task.ContinueWith(static t => _ = t.Exception, CancellationToken.None,
                TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
            Fail(h, write, new TimeoutException(
                $"did not finish within {budget.TotalMilliseconds.ToString("0.###", CultureInfo.InvariantCulture)} ms"));
        }

        cts.Dispose();
        if (task.IsFaulted)
        {
            var error = task.Exception!.InnerExceptions.Count == 1 ? task.Exception.InnerException! : task.Exception;
            Fail(h, write, error);
        }

        if (task.IsCanceled)
        {
            Fail(h, write, new OperationCanceledException("the handler cancelled itself"));
        }

        Report(h, null);
    }

    [StackTraceHidden]
    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private void Fail(HandlerRegistration h, string write, Exception error)
    {
        Report(h, error);
        if (FindDepthError(error) is { } depth)
        {
            // A loop is named by the innermost write: pass that exception up unchanged.
            ExceptionDispatchInfo.Throw(depth);
        }

        throw new HandlerFailedException(h.OwnerId, h.HandlerName, h.Stage, write, error);
    }

    private static PipelineDepthException? FindDepthError(Exception? error)
    {
        for (var e = error; e is not null; e = e.InnerException)
        {
            if (e is PipelineDepthException depth)
            {
                return depth;
            }

        }

        return null;
    }

    internal void Report(HandlerRegistration h, Exception? error)
    {
        foreach (var observer in Observers)
        {
            try
            {
                if (error is null)
                {
                    observer.OnHandlerSucceeded(h.OwnerId, h.HandlerName);
                }
                else
                {
                    observer.OnHandlerFailed(h.OwnerId, h.HandlerName, error);
                }
            }
            catch (Exception ex)
            {
                _logger.LogError(ex, "Handler fault observer {Observer} threw", observer.GetType().Name);
            }
        }

        if (error is not null)
        {
            _logger.LogWarning(error, "Handler {Handler} of {Owner} failed", h.HandlerName, h.OwnerId);
        }
    }
}
