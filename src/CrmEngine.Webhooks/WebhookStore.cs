using System.Buffers.Text;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;
using CrmEngine.Core.Storage;
using LiteDB;

namespace CrmEngine.Webhooks;

/// <summary>Skipped: the subscribing user could receive nothing when the change happened (deactivated); no data is kept.</summary>
internal enum DeliveryState { Pending, Retrying, Delivered, Parked, Skipped }

/// <summary>A subscription as the API shows it (never with its secret).</summary>
internal sealed record WebhookSubscription(
    string Id,
    string Url,
    IReadOnlyList<string> Events,
    bool Active,
    string? Description,
    DateTimeOffset CreatedAt,
    string CreatedBy,
    DateTimeOffset UpdatedAt,
    long FromSequence,
    string? User);

/// <summary>One delivery of one change to one subscription, as the history shows it.</summary>
internal sealed record WebhookDelivery(
    string Id,
    string SubscriptionId,
    long Sequence,
    string Event,
    string Entity,
    string EntityId,
    DeliveryState State,
    int Attempts,
    int? LastStatusCode,
    string? LastError,
    DateTimeOffset? NextAttemptAt,
    DateTimeOffset CreatedAt,
    DateTimeOffset? LastAttemptAt,
    DateTimeOffset? DeliveredAt);

/// <summary>A delivery ready to send: the stored body and where to.</summary>
internal sealed record PendingSend(string DeliveryId, string SubscriptionId, string Event, string Url, string Secret, string Body, int Attempts, long DueMs);

/// <summary>Changes to a subscription; null members stay as they are.</summary>
internal sealed record SubscriptionPatch(string? Url, IReadOnlyList<string>? Events, string? Secret, bool? Active, string? Description);

/// <summary>Refused: judged again as the subscription's user, the delivery may not go (it is now skipped).</summary>
internal enum RetryOutcome { Requeued, NotFound, NotParked, Refused }

/// <summary>
/// Subscriptions, deliveries and the change-feed cursor in internal collections of the engine's store
/// (<c>_webhooks</c>, <c>_webhook_deliveries</c>, <c>_webhook_state</c>). Reads run on the caller's thread; every write
/// is one transaction on the store's writer thread, which is what keeps the cursor and the deliveries it produced
/// in step: both are written together or not at all.
/// </summary>
internal sealed class WebhookStore
{
    internal const string SubscriptionsCollection = "_webhooks";
    internal const string DeliveriesCollection = "_webhook_deliveries";
    internal const string StateCollection = "_webhook_state";
    private const string CursorId = "cursor";

    private readonly CrmDatabase _db;
    private readonly TimeProvider _time;

    public WebhookStore(CrmDatabase database, TimeProvider? timeProvider = null)
    {
        _db = database ?? throw new ArgumentNullException(nameof(database));
        _time = timeProvider ?? TimeProvider.System;
        _db.WriteAsync(_ =>
        {
            // "open" is "<subscription>/<sequence>" while a delivery still has to be sent (null once delivered or
            // parked): the first entry of a subscription's range is the delivery that must go next.
            // Every collection is created here, alone: LiteDB 5 can fail a read on another thread ("page type must be
            // collection page") while a transaction creates the collection being read.
            Subscriptions.EnsureIndex("ix_active", "$.active");
            State.EnsureIndex("ix_seq", "$.seq");
            Deliveries.EnsureIndex("ix_open", "$.open");
            // The same holds for the change feed and audit collections the dispatcher reads: on a new database they
            // are only created by the first write, while the dispatcher may already be looking (and LiteDB then closes
            // itself). An empty insert-and-delete creates them now, before anyone reads.
            foreach (var name in new[] { CrmDatabase.ChangesCollection, CrmDatabase.AuditCollection })
            {
                if (!Lite.CollectionExists(name))
                {
                    var collection = Lite.GetCollection(name);
                    collection.Insert(new BsonDocument { ["_id"] = "\u0001create" });
                    collection.Delete("\u0001create");
                }
            }

            Deliveries.EnsureIndex("ix_state", "$.state");
            Deliveries.EnsureIndex("ix_doneAt", "$.doneAt");
            return true;
        }).GetAwaiter().GetResult();
    }

    private LiteDatabase Lite => _db.Database;

    private ILiteCollection<BsonDocument> Subscriptions => Lite.GetCollection(SubscriptionsCollection);

    private ILiteCollection<BsonDocument> Deliveries => Lite.GetCollection(DeliveriesCollection);

    private ILiteCollection<BsonDocument> State => Lite.GetCollection(StateCollection);

    private long NowMs => _time.GetUtcNow().ToUnixTimeMilliseconds();

    internal static string NewSecret() => "whsec_" + Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(32));

    internal static string DeliveryId(string subscriptionId, long sequence) =>
        subscriptionId + "-" + sequence.ToString("D19", CultureInfo.InvariantCulture);

    private static string OpenKey(string subscriptionId, long sequence) =>
        subscriptionId + "/" + sequence.ToString("D19", CultureInfo.InvariantCulture);

    // ------------------------------------------------------------------ subscriptions

    /// <summary>Stores a new subscription; returns it and its secret (the only time the secret leaves the store).</summary>
    public async Task<(WebhookSubscription Subscription, string Secret)> CreateAsync(string url, IReadOnlyList<string> events, string? secret,
        bool active, string? description, string createdBy, string? user = null)
    {
        var id = "wh_" + Guid.CreateVersion7().ToString("N");
        var key = string.IsNullOrEmpty(secret) ? NewSecret() : secret;
        var now = NowMs;
        var doc = await _db.WriteAsync(_ =>
        {
            var d = new BsonDocument
            {
                ["_id"] = id,
                ["url"] = url,
                ["events"] = new BsonArray(events.Select(e => new BsonValue(e))),
                ["secret"] = key,
                ["active"] = active,
                ["description"] = description is null ? BsonValue.Null : description,
                ["createdAt"] = now,
                ["createdBy"] = createdBy,
                // Deliveries carry only what this user may read (null: sys-api, see SubscriberAccess).
                ["user"] = user is null ? BsonValue.Null : user,
                ["updatedAt"] = now,
                // Only changes committed after the subscription exists are sent to it.
                ["fromSeq"] = _db.ReadLastSequence(),
            };
            Subscriptions.Insert(d);
            return d;
        }).ConfigureAwait(false);
        return (ToSubscription(doc), key);
    }

    public WebhookSubscription? Get(string id) => Subscriptions.FindById(id) is { } d ? ToSubscription(d) : null;

    public IReadOnlyList<WebhookSubscription> List() => Subscriptions.FindAll().Select(ToSubscription).ToList();

    public Task<WebhookSubscription?> UpdateAsync(string id, SubscriptionPatch patch)
    {
        var now = NowMs;
        return _db.WriteAsync(_ =>
        {
            var d = Subscriptions.FindById(id);
            if (d is null)
            {
                return null;
            }

            if (patch.Url is not null)
            {
                d["url"] = patch.Url;
            }

            if (patch.Events is not null)
            {
                d["events"] = new BsonArray(patch.Events.Select(e => new BsonValue(e)));
            }

            if (patch.Secret is not null)
            {
                d["secret"] = patch.Secret;
            }

            if (patch.Active is { } active)
            {
                d["active"] = active;
            }

            if (patch.Description is not null)
            {
                d["description"] = patch.Description.Length == 0 ? BsonValue.Null : patch.Description;
            }

            d["updatedAt"] = now;
            Subscriptions.Update(d);
            return (WebhookSubscription?)ToSubscription(d);
        });
    }

    /// <summary>Removes the subscription and its whole delivery history.</summary>
    public Task<bool> DeleteAsync(string id) => _db.WriteAsync(_ =>
    {
        if (!Subscriptions.Delete(id))
        {
            return false;
        }

        Deliveries.DeleteMany(Query.Between("_id", id + "-", id + "-\uffff"));
        return true;
    });

    /// <summary>Url and secret for a ping (secret stays inside the engine).</summary>
    internal (string Url, string Secret)? Target(string id) =>
        Subscriptions.FindById(id) is { } d ? (d["url"].AsString, d["secret"].AsString) : null;

    private static WebhookSubscription ToSubscription(BsonDocument d) => new(
        d["_id"].AsString,
        d["url"].AsString,
        d["events"].AsArray.Select(e => e.AsString).ToList(),
        d["active"].AsBoolean,
        d["description"].IsString ? d["description"].AsString : null,
        DateTimeOffset.FromUnixTimeMilliseconds(d["createdAt"].AsInt64),
        d["createdBy"].AsString,
        DateTimeOffset.FromUnixTimeMilliseconds(d["updatedAt"].AsInt64),
        d["fromSeq"].AsInt64,
        UserOf(d));

    private static string? UserOf(BsonDocument d) => d.TryGetValue("user", out var u) && u.IsString ? u.AsString : null;

    // ------------------------------------------------------------------ fan-out from the change feed

    /// <summary>The last change already turned into deliveries; null before the first run.</summary>
    public long? ReadCursor() => State.FindById(CursorId) is { } d ? d["seq"].AsInt64 : null;

    /// <summary>First run: start at the newest change (nobody subscribed to the ones before).</summary>
    public Task<long> InitCursorAsync() => _db.WriteAsync(_ =>
    {
        if (State.FindById(CursorId) is { } existing)
        {
            return existing["seq"].AsInt64;
        }

        var last = _db.ReadLastSequence();
        State.Insert(new BsonDocument { ["_id"] = CursorId, ["seq"] = last });
        return last;
    });

    /// <summary>
    /// Turns the next committed changes after <paramref name="cursor"/> into deliveries for every active subscription
    /// whose events match, and moves the cursor past them, in ONE transaction: a crash before it commits leaves the
    /// cursor where it was, so those changes are read again, never skipped. Returns the new cursor.
    /// </summary>
    public async Task<(long Cursor, int Changes, int Deliveries)> FanOutAsync(long cursor, IChangeFeed feed, RecordImages images, int batch,
        CancellationToken cancellationToken, Func<string?, Task<SubscriberAccess>>? accessFor = null)
    {
        var changes = await feed.ReadAsync(cursor, batch, cancellationToken).ConfigureAwait(false);
        if (changes.Count == 0)
        {
            return (cursor, 0, 0);
        }

        var subscriptions = Subscriptions.Find(Query.EQ("active", true))
            .Select(d => (Id: d["_id"].AsString, Events: d["events"].AsArray.Select(e => e.AsString).ToArray(), From: d["fromSeq"].AsInt64,
                User: UserOf(d)))
            .ToList();
        // The access of each subscriber as of now, once per batch (the model's snapshot is cached anyway).
        var access = new Dictionary<string, SubscriberAccess>(StringComparer.Ordinal);
        foreach (var sub in subscriptions)
        {
            access[sub.Id] = accessFor is null ? SubscriberAccess.Everything : await accessFor(sub.User).ConfigureAwait(false);
        }

        var now = NowMs;
        var docs = new List<BsonDocument>();
        foreach (var change in changes)
        {
            JsonNode? data = null;
            JsonObject? image = null;
            var dataRead = false;
            // A consent entry's customer as of the change, read once for every subscription that asks.
            (string Id, JsonObject? Image)? customer = null;
            JsonObject? CustomerOf(string customerId)
            {
                customer ??= (customerId, images.After(EntityNames.Customer, customerId, change.Sequence, orLastKnown: true));
                return customer.Value.Id == customerId ? customer.Value.Image : null;
            }

            foreach (var sub in subscriptions)
            {
                if (change.Sequence <= sub.From || !WebhookEvents.Matches(sub.Events, change.Entity, change.Operation))
                {
                    continue;
                }

                var id = DeliveryId(sub.Id, change.Sequence);
                var eventName = WebhookEvents.EventName(change.Entity, change.Operation);
                var subscriber = access[sub.Id];
                if (subscriber.Refusal is { } refusal)
                {
                    docs.Add(Skipped(id, sub.Id, change, eventName, now, "skipped: " + refusal + "; nothing was sent"));
                    continue;
                }

                if (!dataRead)
                {
                    // The owner as of the change decides (for a delete: as of just before it).
                    image = images.After(change.Entity, change.EntityId, change.Operation == ChangeOperation.Delete ? change.Sequence - 1 : change.Sequence);
                    data = change.Operation == ChangeOperation.Delete ? null : PayloadShape.ToApi(change.Entity, image);
                    dataRead = true;
                }

                if (!subscriber.MayRead(change.Entity, change.EntityId, image, CustomerOf))
                {
                    continue; // not even a trace: the subscriber must not learn that the record exists
                }

                docs.Add(new BsonDocument
                {
                    ["_id"] = id,
                    ["sub"] = sub.Id,
                    ["seq"] = change.Sequence,
                    ["event"] = eventName,
                    ["entity"] = change.Entity,
                    ["entityId"] = change.EntityId,
                    ["state"] = nameof(DeliveryState.Pending),
                    ["open"] = OpenKey(sub.Id, change.Sequence),
                    ["attempts"] = 0,
                    ["due"] = now,
                    ["createdAt"] = now,
                    ["lastAttemptAt"] = BsonValue.Null,
                    ["doneAt"] = BsonValue.Null,
                    ["status"] = BsonValue.Null,
                    ["error"] = BsonValue.Null,
                    ["body"] = Payload(id, change, eventName, subscriber.Mask(change.Entity, data)),
                });
            }
        }

        var next = changes[^1].Sequence;
        await _db.WriteAsync(_ =>
        {
            var stored = State.FindById(CursorId)?["seq"].AsInt64;
            if (stored != cursor)
            {
                // Another fan-out moved it (two dispatchers on one store): leave the work to that one.
                throw new InvalidOperationException($"The webhook cursor moved from {cursor} to {stored} meanwhile.");
            }

            // A subscription deleted since it was read gets nothing (its history is already gone).
            var live = docs.Where(d => Subscriptions.Exists(Query.EQ("_id", d["sub"]))).ToList();
            if (live.Count > 0)
            {
                Deliveries.Insert(live);
            }

            State.Upsert(new BsonDocument { ["_id"] = CursorId, ["seq"] = next });
            return true;
        }).ConfigureAwait(false);
        return (next, changes.Count, docs.Count);
    }

    /// <summary>A delivery that is done at once without a send: only the event and the reason are kept.</summary>
    private static BsonDocument Skipped(string id, string subscriptionId, ChangeRecord change, string eventName, long now, string reason) => new()
    {
        ["_id"] = id,
        ["sub"] = subscriptionId,
        ["seq"] = change.Sequence,
        ["event"] = eventName,
        ["entity"] = change.Entity,
        ["entityId"] = change.EntityId,
        ["state"] = nameof(DeliveryState.Skipped),
        ["open"] = BsonValue.Null,
        ["attempts"] = 0,
        ["due"] = now,
        ["createdAt"] = now,
        ["lastAttemptAt"] = BsonValue.Null,
        ["doneAt"] = now,
        ["status"] = BsonValue.Null,
        ["error"] = reason,
        ["body"] = BsonValue.Null,
    };

    private static string Payload(string deliveryId, ChangeRecord change, string eventName, JsonNode? data)
    {
        var body = new JsonObject
        {
            ["deliveryId"] = deliveryId,
            ["sequence"] = change.Sequence,
            ["event"] = eventName,
            ["entity"] = change.Entity,
            ["entityId"] = change.EntityId,
            ["operation"] = change.Operation.ToString().ToLowerInvariant(),
            ["version"] = change.Version,
            ["at"] = change.At.ToString("O", CultureInfo.InvariantCulture),
            ["actor"] = change.Actor,
            ["data"] = data?.DeepClone(), // one image serves every subscription; a node has only one parent
        };
        return body.ToJsonString(WebhookJson.Compact);
    }

    // ------------------------------------------------------------------ sending

    /// <summary>The delivery that must go next to <paramref name="subscriptionId"/> (oldest still open), or null.</summary>
    public PendingSend? NextFor(string subscriptionId, string url, string secret)
    {
        var head = Deliveries.Query()
            .Where(Query.Between("open", subscriptionId + "/", subscriptionId + "/\uffff"))
            .OrderBy("$.open")
            .Limit(1)
            .FirstOrDefault();
        return head is null
            ? null
            : new PendingSend(head["_id"].AsString, subscriptionId, head["event"].AsString, url, secret, head["body"].AsString,
                head["attempts"].AsInt32, head["due"].AsInt64);
    }

    /// <summary>Active subscriptions with what the dispatcher needs to send to them.</summary>
    internal IReadOnlyList<(string Id, string Url, string Secret)> ActiveTargets() =>
        Subscriptions.Find(Query.EQ("active", true)).Select(d => (d["_id"].AsString, d["url"].AsString, d["secret"].AsString)).ToList();

    /// <summary>
    /// Records one try. Delivered: done (body dropped, it is no longer needed). Failed: retried after
    /// <paramref name="retryAfter"/>, or parked with the error when <paramref name="retryAfter"/> is null.
    /// Nothing happens when the delivery is gone (subscription deleted meanwhile) or no longer open.
    /// </summary>
    public Task<DeliveryState?> RecordAttemptAsync(string deliveryId, bool delivered, int? statusCode, string? error, TimeSpan? retryAfter)
    {
        var now = NowMs;
        return _db.WriteAsync(_ =>
        {
            var d = Deliveries.FindById(deliveryId);
            if (d is null || d["open"].IsNull)
            {
                return (DeliveryState?)null;
            }

            d["attempts"] = d["attempts"].AsInt32 + 1;
            d["lastAttemptAt"] = now;
            d["status"] = statusCode is { } s ? s : BsonValue.Null;
            d["error"] = error is null ? BsonValue.Null : error;
            DeliveryState state;
            if (delivered)
            {
                state = DeliveryState.Delivered;
                d["open"] = BsonValue.Null;
                d["doneAt"] = now;
                d["body"] = BsonValue.Null;
            }
            else if (retryAfter is { } wait)
            {
                state = DeliveryState.Retrying;
                d["due"] = now + (long)wait.TotalMilliseconds;
            }
            else
            {
                state = DeliveryState.Parked;
                d["open"] = BsonValue.Null;
            }

            d["state"] = state.ToString();
            Deliveries.Update(d);
            return (DeliveryState?)state;
        });
    }

    /// <summary>
    /// Puts a parked delivery back in line (attempts reset); it goes before the subscription's later deliveries. The
    /// stored body was judged when the change happened: it is judged again with the subscription's user's rights now,
    /// over the record as of the change and as it is now (a user who was deactivated, or may no longer read the record —
    /// given to someone else, a role taken away — gets nothing: the delivery becomes skipped with the reason, and the
    /// outcome is <see cref="RetryOutcome.Refused"/>), and fields hidden from the user now leave <c>data</c>.
    /// </summary>
    public async Task<(RetryOutcome Outcome, string? Reason)> RedeliverAsync(string subscriptionId, string deliveryId, Func<string?, Task<SubscriberAccess>> accessFor)
    {
        var found = Deliveries.FindById(deliveryId);
        if (found is null || found["sub"].AsString != subscriptionId || Get(subscriptionId) is not { } subscription)
        {
            return (RetryOutcome.NotFound, null);
        }

        if (found["state"].AsString != nameof(DeliveryState.Parked))
        {
            return (RetryOutcome.NotParked, null);
        }

        var subscriber = await accessFor(subscription.User).ConfigureAwait(false);
        var entity = found["entity"].AsString;
        var entityId = found["entityId"].AsString;
        var sequence = found["seq"].AsInt64;
        var body = JsonNode.Parse(found["body"].AsString)!.AsObject();
        var delete = body["operation"]?.GetValue<string>() == "delete";
        var images = new RecordImages(_db);
        var who = subscription.User ?? "sys-api";
        // The user's rights now, over the record as of the change and — while it still exists — as it is now (given away since?).
        var current = images.After(entity, entityId, long.MaxValue);
        var mayRead = subscriber.MayRead(entity, entityId, images.After(entity, entityId, delete ? sequence - 1 : sequence),
                          id => images.After(EntityNames.Customer, id, sequence, orLastKnown: true))
                      && (current is null || subscriber.MayRead(entity, entityId, current, id => images.After(EntityNames.Customer, id, long.MaxValue, orLastKnown: true)));
        var refusal = subscriber.Refusal ?? (mayRead ? null : $"user '{who}' may no longer read {entity} '{entityId}'");
        if (refusal is null)
        {
            body["data"] = subscriber.Mask(entity, body["data"])?.DeepClone();
        }

        var now = NowMs;
        var outcome = await _db.WriteAsync(_ =>
        {
            var d = Deliveries.FindById(deliveryId);
            if (d is null || d["state"].AsString != nameof(DeliveryState.Parked))
            {
                return d is null ? RetryOutcome.NotFound : RetryOutcome.NotParked; // changed meanwhile
            }

            if (refusal is not null)
            {
                d["state"] = nameof(DeliveryState.Skipped);
                d["error"] = "skipped at redelivery: " + refusal + "; nothing was sent";
                d["body"] = BsonValue.Null;
                d["doneAt"] = now;
                Deliveries.Update(d);
                return RetryOutcome.Refused;
            }

            d["state"] = nameof(DeliveryState.Pending);
            d["open"] = OpenKey(subscriptionId, d["seq"].AsInt64);
            d["attempts"] = 0;
            d["due"] = now;
            d["body"] = body.ToJsonString(WebhookJson.Compact);
            Deliveries.Update(d);
            return RetryOutcome.Requeued;
        }).ConfigureAwait(false);
        return (outcome, outcome == RetryOutcome.Refused ? refusal : null);
    }

    // ------------------------------------------------------------------ history and health

    /// <summary>A subscription's deliveries, newest first; <paramref name="beforeSequence"/> pages back.</summary>
    public IReadOnlyList<WebhookDelivery> History(string subscriptionId, DeliveryState? state, int limit, long? beforeSequence)
    {
        var upper = beforeSequence is { } b ? DeliveryId(subscriptionId, b) : subscriptionId + "-\uffff";
        var query = Deliveries.Query()
            .Where(Query.And(Query.GTE("_id", subscriptionId + "-"), Query.LT("_id", upper)));
        if (state is { } s)
        {
            query = query.Where(Query.EQ("state", s.ToString()));
        }

        return query.OrderByDescending("_id").Limit(limit).ToList().Select(ToDelivery).ToList();
    }

    public WebhookDelivery? Delivery(string deliveryId) => Deliveries.FindById(deliveryId) is { } d ? ToDelivery(d) : null;

    public (long Pending, long Retrying, long Parked) Counts() => (
        Deliveries.Count(Query.EQ("state", nameof(DeliveryState.Pending))),
        Deliveries.Count(Query.EQ("state", nameof(DeliveryState.Retrying))),
        Deliveries.Count(Query.EQ("state", nameof(DeliveryState.Parked))));

    public int ActiveCount() => Subscriptions.Count(Query.EQ("active", true));

    /// <summary>Removes delivered deliveries older than <paramref name="cutoff"/> (parked ones stay until retried or the subscription goes).</summary>
    public Task<int> PruneDeliveredAsync(DateTimeOffset cutoff) => _db.WriteAsync(_ =>
        Deliveries.DeleteMany(Query.Between("doneAt", 0L, cutoff.ToUnixTimeMilliseconds())));

    private static WebhookDelivery ToDelivery(BsonDocument d)
    {
        var state = Enum.Parse<DeliveryState>(d["state"].AsString);
        return new WebhookDelivery(
            d["_id"].AsString,
            d["sub"].AsString,
            d["seq"].AsInt64,
            d["event"].AsString,
            d["entity"].AsString,
            d["entityId"].AsString,
            state,
            d["attempts"].AsInt32,
            d["status"].IsNumber ? d["status"].AsInt32 : null,
            d["error"].IsString ? d["error"].AsString : null,
            state is DeliveryState.Pending or DeliveryState.Retrying ? DateTimeOffset.FromUnixTimeMilliseconds(d["due"].AsInt64) : null,
            DateTimeOffset.FromUnixTimeMilliseconds(d["createdAt"].AsInt64),
            d["lastAttemptAt"].IsNumber ? DateTimeOffset.FromUnixTimeMilliseconds(d["lastAttemptAt"].AsInt64) : null,
            d["doneAt"].IsNumber ? DateTimeOffset.FromUnixTimeMilliseconds(d["doneAt"].AsInt64) : null);
    }
}

internal static class WebhookJson
{
    /// <summary>Compact and readable (non-ASCII names are not escaped); the signature covers these exact bytes.</summary>
    public static readonly JsonSerializerOptions Compact = new()
    {
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        WriteIndented = false,
    };
}
