using CrmEngine.Abstractions.Mail;
using CrmEngine.Core.Storage;
using LiteDB;

namespace CrmEngine.Mail.Outbox;

/// <summary>The end of one attempt, applied to the stored message by <see cref="OutboxStore.CompleteAsync"/>.</summary>
/// <summary>The end of one attempt; <paramref name="Scrub"/> also drops the personal data (erased customer).</summary>
internal sealed record AttemptOutcome(string Id, int Attempt, MailState State, string? Error, string? Reply, long? Due, bool Scrub = false);

/// <summary>
/// The outbox collection <c>_mail</c> in the engine's LiteDB store. Reads run on the caller's thread; every change is one
/// transaction on the store's writer thread (<c>CrmDatabase.WriteAsync</c>, Core internals), so the Core's threading rule
/// and its durable flush hold. Work run on the writer thread never throws for an expected case (a throwing direct write
/// would roll back the whole commit group); it returns what happened instead.
/// </summary>
internal sealed class OutboxStore
{
    internal const string Collection = "_mail";
    internal const string SettingsCollection = "_mail_settings";
    internal const string SnapshotsCollection = "_mail_snapshots";

    private readonly CrmDatabase _db;
    private readonly LiteDatabase _lite;
    private readonly TimeProvider _time;

    public OutboxStore(CrmDatabase database, TimeProvider? time = null)
    {
        _db = database ?? throw new ArgumentNullException(nameof(database));
        _lite = database.Database;
        _time = time ?? database.TimeProvider;
        _db.WriteAsync(_ =>
        {
            Messages.EnsureIndex("ix_key", "$.key", unique: true);
            Messages.EnsureIndex("ix_due", "$.due");
            Messages.EnsureIndex("ix_state", "$.state");
            Messages.EnsureIndex("ix_customer", "$.customer");
            return true;
        }).GetAwaiter().GetResult();
    }

    public CrmDatabase Database => _db;

    public long NowMs => _time.GetUtcNow().ToUnixTimeMilliseconds();

    private ILiteCollection<BsonDocument> Messages => _lite.GetCollection(Collection);

    private ILiteCollection<BsonDocument> Snapshots => _lite.GetCollection(SnapshotsCollection);

    /// <summary>Fills in the model snapshot (kept in its own collection, see <see cref="MailDocument.Snapshot"/>).</summary>
    public MailDocument WithSnapshot(MailDocument doc)
    {
        if (!doc.InlineSnapshot)
        {
            doc.Snapshot = Snapshots.FindById(doc.Id) is { } s ? s["s"].AsString : "{}";
        }

        return doc;
    }

    private void PutSnapshot(MailDocument doc)
    {
        if (!doc.InlineSnapshot)
        {
            Snapshots.Upsert(new BsonDocument { ["_id"] = doc.Id, ["s"] = doc.Snapshot });
        }
    }

    private ILiteCollection<BsonDocument> Settings => _lite.GetCollection(SettingsCollection);

    public MailDocument? Get(string id) => Messages.FindById(id) is { } d ? MailDocument.FromBson(d) : null;

    // Values go in as parameters (@0), never into the expression text: LiteDB compiles and caches each distinct
    // expression text, so a literal key per call cost a compile (milliseconds) per look-up.
    public MailDocument? FindByKey(string key) => Messages.FindOne(BsonExpression.Create("$.key = @0", key)) is { } d ? MailDocument.FromBson(d) : null;

    /// <summary>
    /// Stores <paramref name="docs"/> in ONE transaction (one disk sync for the whole batch); a message whose key is known
    /// (stored before, or earlier in the same batch) is not stored and the first message is returned with Duplicate=true.
    /// </summary>
    public Task<List<(MailDocument Doc, bool Duplicate)>> InsertManyAsync(IReadOnlyList<MailDocument> docs) => _db.WriteAsync(_ =>
    {
        var results = new List<(MailDocument, bool)>(docs.Count);
        foreach (var doc in docs)
        {
            if (FindByKey(doc.Key) is { } existing)
            {
                results.Add((existing, true));
                continue;
            }

            Messages.Insert(doc.ToBson());
            PutSnapshot(doc);
            results.Add((doc, false));
        }

        return results;
    });

    /// <summary>
    /// A GDPR erase of <paramref name="customerId"/>: waiting messages (Pending, Retrying) become Suppressed, and every
    /// message of that customer loses its personal data (address, name, model snapshot). Ids, template, states and times
    /// stay, so the outbox still shows that mail went and when. Returns (suppressed, scrubbed).
    /// </summary>
    public Task<(int Suppressed, int Scrubbed)> ForgetCustomerAsync(string customerId, string reason) => _db.WriteAsync(_ =>
    {
        var now = NowMs;
        int suppressed = 0, scrubbed = 0;
        foreach (var bson in Messages.Find(BsonExpression.Create("$.customer = @0", customerId)).ToList())
        {
            var doc = MailDocument.FromBson(bson);
            if (doc.State is MailState.Pending or MailState.Retrying)
            {
                doc.State = MailState.Suppressed;
                doc.LastError = reason;
                doc.Due = null;
                suppressed++;
            }

            if (doc.State == MailState.Sending)
            {
                continue; // in a worker's hands; its outcome (or the claim-time check) deals with it
            }

            doc.To = Erased;
            doc.ToName = null;
            doc.Snapshot = "{}";
            doc.Updated = now;
            Messages.Update(doc.ToBson());
            PutSnapshot(doc);
            scrubbed++;
        }

        return (suppressed, scrubbed);
    });

    /// <summary>What an erased address or name reads as (the same marker as the customer eraser's).</summary>
    internal const string Erased = "[erased]";

    /// <summary>Marks up to <paramref name="limit"/> due messages Sending (attempt counted) and returns them, oldest due first.</summary>
    public Task<List<MailDocument>> ClaimDueAsync(int limit) => _db.WriteAsync(_ =>
    {
        var now = NowMs;
        var claimed = new List<MailDocument>();
        foreach (var bson in Messages.Find(BsonExpression.Create("$.due BETWEEN @0 AND @1", 0L, now), 0, limit).ToList())
        {
            var doc = MailDocument.FromBson(bson);
            if (doc.State is not (MailState.Pending or MailState.Retrying))
            {
                continue;
            }

            doc.State = MailState.Sending;
            doc.Attempts++;
            doc.LastAttempt = now;
            doc.Updated = now;
            doc.Due = null;
            Messages.Update(doc.ToBson());
            claimed.Add(WithSnapshot(doc));
        }

        return claimed;
    });

    /// <summary>Applies attempt outcomes in one transaction; an outcome for an attempt that is no longer current is ignored.</summary>
    public Task<int> CompleteAsync(IReadOnlyList<AttemptOutcome> outcomes) => _db.WriteAsync(_ =>
    {
        var now = NowMs;
        var applied = 0;
        foreach (var outcome in outcomes)
        {
            var doc = Get(outcome.Id);
            if (doc is null || doc.State != MailState.Sending || doc.Attempts != outcome.Attempt)
            {
                continue;
            }

            if (outcome.State == MailState.Pending)
            {
                doc.Attempts--; // claimed but never tried (the sender stopped first)
            }

            doc.State = outcome.State;
            doc.LastError = outcome.Error ?? (outcome.State == MailState.Sent ? null : doc.LastError);
            doc.ServerReply = outcome.Reply ?? doc.ServerReply;
            doc.Due = outcome.Due;
            doc.Updated = now;
            if (outcome.State == MailState.Sent)
            {
                doc.Sent = now;
            }

            if (outcome.Scrub)
            {
                doc.To = Erased;
                doc.ToName = null;
                doc.Snapshot = "{}";
                PutSnapshot(doc);
            }

            Messages.Update(doc.ToBson());
            applied++;
        }

        return applied;
    });

    /// <summary>
    /// At start: a message found in Sending was cut short by a crash or a stop (the server may or may not have accepted it);
    /// it is sent again now. This is the only way a message can reach a recipient twice.
    /// </summary>
    public Task<int> RecoverInterruptedAsync() => _db.WriteAsync(_ =>
    {
        var now = NowMs;
        var count = 0;
        foreach (var bson in Messages.Find(Query.EQ("state", nameof(MailState.Sending))).ToList())
        {
            var doc = MailDocument.FromBson(bson);
            doc.State = MailState.Retrying;
            doc.Interrupted++;
            doc.LastError = "the engine stopped while this message was being sent; sending it again (the server may have accepted the interrupted attempt)";
            doc.Due = now;
            doc.Updated = now;
            Messages.Update(doc.ToBson());
            count++;
        }

        return count;
    });

    /// <summary>Failed or Retrying → Pending now (attempts start again). Returns null when there is no such message, else the problem or "".</summary>
    public Task<(string? Problem, MailDocument? Doc)> RetryAsync(string id) => _db.WriteAsync(_ =>
    {
        var doc = Get(id);
        if (doc is null)
        {
            return ((string?)null, (MailDocument?)null);
        }

        if (doc.State is not (MailState.Failed or MailState.Retrying or MailState.Pending))
        {
            var why = doc.State switch
            {
                MailState.Sent => "it was sent already",
                MailState.Sending => "it is being sent right now",
                MailState.Suppressed => "it was suppressed (" + MailOutbox.WithoutBlacklistReason(doc.LastError) + "); enqueue a new message once the reason is gone",
                _ => "",
            };
            return ($"message {doc.Id} is {doc.State}: {why}", doc);
        }

        var now = NowMs;
        doc.State = MailState.Pending;
        doc.Attempts = 0;
        doc.Due = now;
        doc.Updated = now;
        Messages.Update(doc.ToBson());
        return ("", doc);
    });

    /// <summary>Messages in id (creation) order after <paramref name="afterId"/>; by the state index when a state is given.</summary>
    public List<MailDocument> List(MailState? state, int limit, string? afterId)
    {
        var after = afterId ?? "";
        IEnumerable<BsonDocument> source = state is { } s
            ? Messages.Find(Query.EQ("state", s.ToString())).Where(d => string.CompareOrdinal(d["_id"].AsString, after) > 0)
                .OrderBy(d => d["_id"].AsString, StringComparer.Ordinal)
            : Messages.Find(BsonExpression.Create("_id > @0", after), 0, limit);
        return source.Take(limit).Select(MailDocument.FromBson).ToList();
    }

    public Dictionary<MailState, long> CountByState() =>
        Enum.GetValues<MailState>().ToDictionary(s => s, s => (long)Messages.Count(Query.EQ("state", s.ToString())));

    /// <summary>The earliest due time among waiting messages (Pending/Retrying), or null.</summary>
    public long? EarliestDue() =>
        Messages.Find(Query.All("due", Query.Ascending), 0, 1).FirstOrDefault() is { } d && d.TryGetValue("due", out var due) && due.IsNumber
            ? due.AsInt64
            : null;

    /// <summary>The oldest creation time among waiting messages (for health: how long mail has been waiting).</summary>
    public long? OldestWaitingCreated()
    {
        long? oldest = null;
        foreach (var state in new[] { MailState.Pending, MailState.Retrying, MailState.Sending })
        {
            // Ids are time-ordered: the smallest id in a state is its oldest message.
            var first = Messages.Find(Query.EQ("state", state.ToString())).Select(d => d["created"].AsInt64).DefaultIfEmpty(long.MaxValue).Min();
            if (first != long.MaxValue && (oldest is null || first < oldest))
            {
                oldest = first;
            }
        }

        return oldest;
    }

    /// <summary>A value kept in <c>_mail_settings</c>, created once by <paramref name="create"/> (the first writer wins).</summary>
    public async Task<string> GetOrCreateSettingAsync(string name, Func<string> create)
    {
        if (Settings.FindById(name) is { } found)
        {
            return found["value"].AsString;
        }

        var fresh = create();
        return await _db.WriteAsync(_ =>
        {
            if (Settings.FindById(name) is { } raced)
            {
                return raced["value"].AsString;
            }

            Settings.Insert(new BsonDocument { ["_id"] = name, ["value"] = fresh, ["created"] = NowMs });
            return fresh;
        }).ConfigureAwait(false);
    }
}
