using System.Globalization;
using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Pipeline;
using CrmEngine.Abstractions.Store;
using CrmEngine.Core.Storage;
using LiteDB;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace CrmEngine.Core.Pipeline;

public enum AsyncDeliveryStatus { Pending, Parked }

/// <summary>One durable delivery of a committed write to an async handler, as the host shows it.</summary>
public sealed record AsyncDeliveryInfo(
    string Id,
    long Sequence,
    string Entity,
    string EntityId,
    ChangeOperation Operation,
    string OwnerId,
    string HandlerName,
    AsyncDeliveryStatus Status,
    int Attempts,
    DateTimeOffset NextAttemptAt,
    string? LastError,
    DateTimeOffset CreatedAt);

/// <summary>What the host can see and do about async deliveries.</summary>
public interface IAsyncDeliveries
{
    /// <summary>Deliveries not yet made (pending, including those whose handler is not registered now) or parked, oldest first.</summary>
    Task<IReadOnlyList<AsyncDeliveryInfo>> ListAsync(AsyncDeliveryStatus? status = null, int limit = 100, CancellationToken cancellationToken = default);

    /// <summary>Puts a parked delivery back to pending with its attempts reset. False when no parked delivery has that id.</summary>
    Task<bool> RetryParkedAsync(string deliveryId, CancellationToken cancellationToken = default);
}

/// <summary>
/// Delivers committed writes to Async handlers, at least once, one at a time: of the deliveries
/// that are due, the oldest change first. A delivery waiting for its retry does not hold back later
/// ones, so there is no strict order per record across retries (handlers use the sequence). Deliveries are
/// rows in <c>_deliveries</c> written in the same transaction as the change, so they survive a
/// restart. Each try runs under the handler timeout; failures retry with exponential backoff
/// (base × 2^(try-1)) and, after the last try, the delivery is parked with its error. Deliveries
/// whose handler is not registered right now stay pending until it is.
/// </summary>
public sealed class AsyncDeliveryDispatcher : BackgroundService, IAsyncDeliveries
{
    private const int BatchSize = 200;
    private static readonly TimeSpan IdleWait = TimeSpan.FromSeconds(30);

    private readonly WritePipeline _pipeline;
    private readonly CrmDatabase _db;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _wake = new(0);

    public AsyncDeliveryDispatcher(WritePipeline pipeline, ILogger<AsyncDeliveryDispatcher>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        _pipeline = pipeline;
        _db = pipeline.Database;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _pipeline.DeliveriesCommitted += Wake;
        _pipeline.Registry.Registered += OnRegistered;
    }

    private void OnRegistered(HandlerRegistration registration)
    {
        if (registration.Stage == PipelineStage.Async)
        {
            Wake();
        }
    }

    private ILiteCollection<BsonDocument> Deliveries => _db.Database.GetCollection(CrmDatabase.DeliveriesCollection);

    /// <summary>Asks the dispatcher to look for due deliveries now.</summary>
    public void Wake()
    {
        try
        {
            if (_wake.CurrentCount == 0)
            {
                _wake.Release();
            }
        }
        catch (ObjectDisposedException)
        {
            // stopped: nothing to wake
        }
    }

    internal static BsonDocument NewDelivery(long seq, string entity, string entityId, ChangeOperation op, HandlerRegistration h,
        string actor, IReadOnlyList<string> chain, BsonDocument? before, BsonDocument? after, DateTimeOffset now) => new()
    {
        ["_id"] = seq.ToString("D19", CultureInfo.InvariantCulture) + "/" + h.HandlerName,
        ["seq"] = seq,
        ["entity"] = entity,
        ["entityId"] = entityId,
        ["op"] = op.ToString(),
        ["owner"] = h.OwnerId,
        ["handler"] = h.HandlerName,
        ["status"] = nameof(AsyncDeliveryStatus.Pending),
        ["attempts"] = 0,
        ["due"] = now.ToUnixTimeMilliseconds(),
        ["createdAt"] = now.ToUnixTimeMilliseconds(),
        ["actor"] = actor,
        ["chain"] = new BsonArray(chain.Select(c => new BsonValue(c))),
        ["before"] = before ?? BsonValue.Null,
        ["after"] = after ?? BsonValue.Null,
        ["error"] = BsonValue.Null,
    };

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            TimeSpan wait;
            try
            {
                wait = await DeliverDueAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (ObjectDisposedException)
            {
                break;
            }
            catch (Exception ex)
            {
                _logger.LogError(ex, "Async delivery round failed; retrying shortly");
                wait = TimeSpan.FromSeconds(1);
            }

            try
            {
                await _wake.WaitAsync(wait, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }

    /// <summary>Makes every due delivery whose handler is registered; returns how long to sleep until the next is due.</summary>
    internal async Task<TimeSpan> DeliverDueAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var registry = _pipeline.Registry;
            var names = registry.AsyncHandlerNames();
            if (names.Count == 0)
            {
                return IdleWait;
            }

            var pending = Query.EQ("status", nameof(AsyncDeliveryStatus.Pending));
            var ofRegistered = Query.In("handler", names.Select(n => new BsonValue(n)));
            var now = _db.TimeProvider.GetUtcNow().ToUnixTimeMilliseconds();
            var due = Deliveries.Query()
                .Where(Query.And(pending, ofRegistered, Query.LTE("due", now)))
                .OrderBy("_id")
                .Limit(BatchSize)
                .ToList();
            var delivered = 0;
            foreach (var doc in due)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (registry.FindAsync(doc["entity"].AsString, doc["handler"].AsString) is { } handler)
                {
                    await DeliverAsync(doc, handler, cancellationToken);
                    delivered++;
                }
            }

            if (due.Count == BatchSize && delivered > 0)
            {
                continue;
            }

            var next = Deliveries.Query()
                .Where(Query.And(pending, ofRegistered, Query.GT("due", now)))
                .OrderBy("due")
                .Limit(1)
                .FirstOrDefault();
            if (next is null)
            {
                return IdleWait;
            }

            var wait = TimeSpan.FromMilliseconds(next["due"].AsInt64 - _db.TimeProvider.GetUtcNow().ToUnixTimeMilliseconds());
            return wait < TimeSpan.Zero ? TimeSpan.Zero : wait < IdleWait ? wait : IdleWait;
        }
    }

    private async Task DeliverAsync(BsonDocument doc, HandlerRegistration h, CancellationToken stoppingToken)
    {
        var id = doc["_id"].AsString;
        Exception? error = null;
        WriteScope? scope = null;
        try
        {
            var evt = BuildEvent(doc, h);
            scope = new WriteScope(_db, WritePipeline.ActorOf(h.OwnerId), evt.Chain, h.HandlerName, inTransaction: false);
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
            var run = Task.Run(() =>
            {
                WriteScope.Current = scope;
                return h.Invoke(evt.Event, cts.Token);
            }, CancellationToken.None);
            try
            {
                await run.WaitAsync(_pipeline.Options.HandlerTimeout, stoppingToken);
            }
            catch (TimeoutException)
            {
                scope.Close(abandoned: true);
                _ = cts.CancelAsync();
                _ = run.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
                throw new TimeoutException($"Async handler '{h.HandlerName}' did not finish within {_pipeline.Options.HandlerTimeout.TotalMilliseconds.ToString("0.###", CultureInfo.InvariantCulture)} ms and was abandoned.");
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Shutting down: the delivery stays pending and is made after the restart.
            scope?.Close(abandoned: true);
            return;
        }
        catch (HandlerUnavailableException)
        {
            // The owner is stopping or malfunctioned: not a try and not a fault. The delivery stays pending
            // (looked at again after one base delay, or at once when the handler registers again).
            scope?.Close(abandoned: false);
            var later = (_db.TimeProvider.GetUtcNow() + _pipeline.Options.AsyncRetryBaseDelay).ToUnixTimeMilliseconds();
            await _db.WriteAsync(_ =>
            {
                var current = Deliveries.FindById(id);
                if (current is null)
                {
                    return false;
                }

                current["due"] = later;
                return Deliveries.Update(current);
            });
            return;
        }
        catch (Exception ex)
        {
            error = ex;
        }

        scope?.Close(abandoned: error is TimeoutException);
        _pipeline.Report(h, error);
        if (error is null)
        {
            await _db.WriteAsync(_ => Deliveries.Delete(id));
            return;
        }

        var attempts = doc["attempts"].AsInt32 + 1;
        var parked = attempts >= _pipeline.Options.AsyncMaxAttempts;
        var delay = TimeSpan.FromTicks(_pipeline.Options.AsyncRetryBaseDelay.Ticks * (1L << Math.Min(attempts - 1, 20)));
        var now = _db.TimeProvider.GetUtcNow();
        var message = $"{error.GetType().Name}: {error.Message}";
        await _db.WriteAsync(_ =>
        {
            var current = Deliveries.FindById(id);
            if (current is null)
            {
                return false;
            }

            current["attempts"] = attempts;
            current["error"] = message;
            current["status"] = parked ? nameof(AsyncDeliveryStatus.Parked) : nameof(AsyncDeliveryStatus.Pending);
            current["due"] = (now + delay).ToUnixTimeMilliseconds();
            return Deliveries.Update(current);
        });
        if (parked)
        {
            _logger.LogError("Async delivery {Id} to {Handler} of {Owner} parked after {Attempts} tries: {Error}", id, h.HandlerName, h.OwnerId, attempts, message);
        }
    }

    private (object Event, IReadOnlyList<string> Chain) BuildEvent(BsonDocument doc, HandlerRegistration h)
    {
        object? Image(string field) => doc[field].IsDocument ? _db.Mapper.ToObject(h.EntityType, doc[field].AsDocument) : null;
        var chain = doc["chain"].AsArray.Select(v => v.AsString).ToList();
        var eventType = typeof(WriteEvent<>).MakeGenericType(h.EntityType);
        var evt = Activator.CreateInstance(eventType,
            doc["entity"].AsString, doc["entityId"].AsString, Enum.Parse<ChangeOperation>(doc["op"].AsString),
            Image("before"), Image("after"), PipelineStage.Async, doc["actor"].AsString, (IReadOnlyList<string>)chain, doc["seq"].AsInt64)!;
        return (evt, chain);
    }

    public Task<IReadOnlyList<AsyncDeliveryInfo>> ListAsync(AsyncDeliveryStatus? status = null, int limit = 100, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        var docs = status is null ? Deliveries.FindAll() : Deliveries.Find(Query.EQ("status", status.Value.ToString()));
        IReadOnlyList<AsyncDeliveryInfo> list = docs
            .OrderBy(d => d["_id"].AsString, StringComparer.Ordinal)
            .Take(limit)
            .Select(ToInfo)
            .ToList();
        return Task.FromResult(list);
    }

    public async Task<bool> RetryParkedAsync(string deliveryId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(deliveryId);
        var now = _db.TimeProvider.GetUtcNow().ToUnixTimeMilliseconds();
        var done = await _db.WriteAsync(_ =>
        {
            var doc = Deliveries.FindById(deliveryId);
            if (doc is null || doc["status"].AsString != nameof(AsyncDeliveryStatus.Parked))
            {
                return false;
            }

            doc["status"] = nameof(AsyncDeliveryStatus.Pending);
            doc["attempts"] = 0;
            doc["due"] = now;
            return Deliveries.Update(doc);
        });
        if (done)
        {
            Wake();
        }

        return done;
    }

    private static AsyncDeliveryInfo ToInfo(BsonDocument d) => new(
        d["_id"].AsString,
        d["seq"].AsInt64,
        d["entity"].AsString,
        d["entityId"].AsString,
        Enum.Parse<ChangeOperation>(d["op"].AsString),
        d["owner"].AsString,
        d["handler"].AsString,
        Enum.Parse<AsyncDeliveryStatus>(d["status"].AsString),
        d["attempts"].AsInt32,
        DateTimeOffset.FromUnixTimeMilliseconds(d["due"].AsInt64),
        d["error"].IsNull ? null : d["error"].AsString,
        DateTimeOffset.FromUnixTimeMilliseconds(d["createdAt"].AsInt64));

    public override void Dispose()
    {
        _pipeline.DeliveriesCommitted -= Wake;
        _pipeline.Registry.Registered -= OnRegistered;
        _wake.Dispose();
        base.Dispose();
    }
}
