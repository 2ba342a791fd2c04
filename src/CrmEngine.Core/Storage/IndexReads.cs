using System.Globalization;
using CrmEngine.Abstractions.Model;
using LiteDB;

namespace CrmEngine.Core.Storage;

/// <summary>One record found by an ordered index read: its stored document and the index entry it was met at (a cursor).</summary>
internal readonly record struct IndexHit(BsonDocument Document, string Entry)
{
    /// <summary>The record's id.</summary>
    public string Id => Document["_id"].AsString;

    /// <summary>The stored <c>Owner</c> member, or null (for an access filter judged before the record is mapped).</summary>
    public string? Owner => Document.TryGetValue(nameof(Customer.Owner), out var owner) && owner.IsString ? owner.AsString : null;
}

/// <summary>What an ordered index read cost: LiteDB queries made and documents read (diagnostics and tests).</summary>
public sealed class IndexReadStats
{
    public int Chunks { get; set; }

    public int Documents { get; set; }
}

/// <summary>
/// Ordered reads of the look-up indexes. Every look-up is stored beside its record as <c>_ix.{field}</c>, an array of
/// <c>key\u0001id</c> entries under one LiteDB index (<see cref="EntityDescriptor.LookUpKeys"/> writes them), so one key's
/// records are one index range in id order and keys with a common prefix are one range in key order. Readers outside
/// the write path (API name search and timeline, duplicate look-ups) come here instead of building index expressions
/// themselves, so the layout lives in Core alone.
/// </summary>
/// <remarks>
/// A range is read in chunks of at most <c>chunk</c> documents (one LiteDB query each, its snapshot released before the
/// caller sees the chunk), so a reader that filters (a restricted caller's access) and stops once its page is full reads
/// only the chunks that page needed. A document met at several entries of a range is returned once, at its first entry
/// in reading order; that entry is its cursor.
/// </remarks>
internal static class IndexReads
{
    public const int DefaultChunk = 256;

    /// <summary>
    /// The activities' due-order sort key (not a look-up callers search: <see cref="IndexDefinition.Listed"/> is false):
    /// <c>customerId \u0002 part \u0001 activityId</c>, part = <c>0.</c> + the due time's UTC ticks (else the start
    /// time's) in 19 digits, or <c>1</c> for an activity with neither. In index order: one customer's activities by due
    /// time, else start time, earliest first, undated last, ties by id.
    /// </summary>
    public const string ActivityDueField = "customerDue";

    /// <summary>Between the customer and the due part; below every character a customer id key can hold (keys hold no control characters).</summary>
    private const char DueSeparator = '\u0002';

    private const string Dated = "0.";
    private const string Undated = "1";
    private const int DatedPartLength = 21; // "0." + 19 digits

    /// <summary>The stored due sort key of <paramref name="activity"/> (before the id is appended); null without a customer.</summary>
    public static string? ActivityDueKey(Activity activity) =>
        IndexKeys.Exact(activity.CustomerId ?? "") is { } customer ? customer + DueSeparator + DuePart(activity) : null;

    /// <summary>
    /// The timeline cursor of <paramref name="activity"/> in due order: <c>0.&lt;ticks&gt;.&lt;id&gt;</c> or
    /// <c>1.&lt;id&gt;</c>; ordinal order of cursors is due order.
    /// </summary>
    public static string ActivityDueCursor(Activity activity) => DuePart(activity) + "." + activity.Id;

    /// <summary>The timeline cursor of a due entry met by <see cref="ActivitiesByDue"/>.</summary>
    public static string ActivityDueCursor(IndexHit hit)
    {
        var part = hit.Entry[(hit.Entry.IndexOf(DueSeparator, StringComparison.Ordinal) + 1)..];
        return part.Replace(IndexKeys.Separator, '.');
    }

    private static string DuePart(Activity activity) => (activity.DueAt ?? activity.StartAt) is { } at
        ? Dated + at.UtcTicks.ToString("D19", CultureInfo.InvariantCulture)
        : Undated;

    /// <summary>
    /// The activities of <paramref name="customerId"/> in due order (see <see cref="ActivityDueField"/>), strictly after
    /// the cursor <paramref name="after"/> (<see cref="ActivityDueCursor(Activity)"/>); null when that is not such a cursor.
    /// </summary>
    public static IEnumerable<IndexHit>? ActivitiesByDue(CrmDatabase database, string customerId, string? after,
        Func<IndexHit, bool>? keep = null, int chunk = DefaultChunk, IndexReadStats? stats = null)
    {
        if (IndexKeys.Exact(customerId) is not { } customer)
        {
            return [];
        }

        string? from = null;
        if (after is not null)
        {
            if (DueEntryPart(after) is not { } part)
            {
                return null;
            }

            from = customer + DueSeparator + part;
        }

        return Range(database, CoreEntities.Activity, ActivityDueField, customer + DueSeparator, customer + (char)(DueSeparator + 1), from,
            descending: false, keep, chunk, stats);
    }

    /// <summary>The cursor "0.&lt;ticks&gt;.&lt;id&gt;" / "1.&lt;id&gt;" as the part of a due entry after the customer; null when malformed.</summary>
    private static string? DueEntryPart(string cursor)
    {
        if (cursor.StartsWith(Dated, StringComparison.Ordinal) && cursor.Length > DatedPartLength + 1 && cursor[DatedPartLength] == '.' &&
            !cursor.AsSpan(Dated.Length, DatedPartLength - Dated.Length).ContainsAnyExceptInRange('0', '9'))
        {
            return string.Concat(cursor.AsSpan(0, DatedPartLength), IndexKeys.Separator.ToString(), cursor.AsSpan(DatedPartLength + 1));
        }

        return cursor.StartsWith(Undated + ".", StringComparison.Ordinal) && cursor.Length > 2
            ? Undated + IndexKeys.Separator + cursor[2..]
            : null;
    }

    /// <summary>
    /// The records whose look-up <paramref name="field"/> holds <paramref name="value"/> (normalised as stored), in id
    /// order — newest first when <paramref name="descending"/> — strictly after <paramref name="afterId"/>.
    /// </summary>
    public static IEnumerable<IndexHit> ByKey(CrmDatabase database, EntityDescriptor entity, string field, string value, string? afterId,
        bool descending, Func<IndexHit, bool>? keep = null, int chunk = DefaultChunk, IndexReadStats? stats = null)
    {
        if (Normalized(entity, field, value) is not { } key)
        {
            return [];
        }

        return Range(database, entity, field, key + IndexKeys.Separator, key + (char)(IndexKeys.Separator + 1),
            afterId is null ? null : IndexKeys.Entry(key, afterId), descending, keep, chunk, stats);
    }

    /// <summary>
    /// The records whose look-up <paramref name="field"/> holds a key starting with <paramref name="prefix"/> (normalised
    /// as stored), in key order, then id; strictly after <paramref name="afterEntry"/> (an <see cref="IndexHit.Entry"/> of
    /// an earlier read). Null when <paramref name="afterEntry"/> is not an entry of this prefix.
    /// </summary>
    public static IEnumerable<IndexHit>? ByPrefix(CrmDatabase database, EntityDescriptor entity, string field, string prefix, string? afterEntry,
        Func<IndexHit, bool>? keep = null, int chunk = DefaultChunk, IndexReadStats? stats = null)
    {
        if (Normalized(entity, field, prefix) is not { } key)
        {
            return [];
        }

        if (afterEntry is not null && (!afterEntry.StartsWith(key, StringComparison.Ordinal) || !afterEntry.Contains(IndexKeys.Separator, StringComparison.Ordinal)))
        {
            return null;
        }

        return Range(database, entity, field, key, key + char.MaxValue, afterEntry, descending: false, keep, chunk, stats);
    }

    /// <summary>
    /// A LiteDB predicate for the records whose look-up <paramref name="field"/> holds a key starting with
    /// <paramref name="normalizedPrefix"/> (already normalised as stored), for callers that shape their own query
    /// (a projection, a limit) and need no order.
    /// </summary>
    public static BsonExpression PrefixPredicate(string field, string normalizedPrefix) =>
        Between(field, normalizedPrefix, normalizedPrefix + char.MaxValue);

    private static string? Normalized(EntityDescriptor entity, string field, string value) =>
        entity.IndexesByField.TryGetValue(field, out var index)
            ? index.Normalize(value)
            : throw new ArgumentException($"'{field}' is not a look-up of '{entity.EntityName}'.", nameof(field));

    private static BsonExpression Between(string field, string low, string high) =>
        BsonExpression.Create(EntityDescriptor.IndexPath(field) + " ANY BETWEEN @0 AND @1", low, high);

    /// <summary>
    /// The documents with an entry of <paramref name="field"/> in [<paramref name="low"/>, <paramref name="high"/>], in
    /// entry order (descending: backwards), each at its first entry in that order, strictly beyond <paramref name="after"/>;
    /// read in chunks of <paramref name="chunk"/> documents; <paramref name="keep"/> is asked before a hit is returned.
    /// </summary>
    private static IEnumerable<IndexHit> Range(CrmDatabase database, EntityDescriptor entity, string field, string low, string high, string? after,
        bool descending, Func<IndexHit, bool>? keep, int chunk, IndexReadStats? stats)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(chunk);
        // A chunk read backwards starts at (includes) the entry the last one ended at: it must hold one more to move on.
        chunk = Math.Max(chunk, 2);
        var collection = database.Database.GetCollection(entity.CollectionName);
        // Ordering by the index's own expression makes LiteDB walk that index backwards instead of sorting the range.
        var indexOrder = BsonExpression.Create(EntityDescriptor.IndexPath(field));
        // Every document with an entry at or before `done` (in reading order) was met already, or lies before the cursor.
        var done = after;
        while (true)
        {
            // Forwards, "just after done" is done + '\0' (no entry lies between); backwards, done itself is read again and skipped.
            var from = descending ? low : done is null ? low : done + '\0';
            var to = descending ? done ?? high : high;
            if (string.CompareOrdinal(from, to) > 0)
            {
                yield break;
            }

            var query = collection.Query().Where(Between(field, from, to));
            if (descending)
            {
                query = query.OrderByDescending(indexOrder);
            }

            var documents = query.Limit(chunk).ToList();
            if (stats is not null)
            {
                stats.Chunks++;
                stats.Documents += documents.Count;
            }

            foreach (var document in documents)
            {
                // Where this document belongs in the whole range; a document met again at a later entry was returned before.
                if (FirstEntry(document, field, low, high, descending) is not { } entry ||
                    (done is not null && !Beyond(entry, done, descending)))
                {
                    continue;
                }

                var hit = new IndexHit(document, entry);
                if (keep is null || keep(hit))
                {
                    yield return hit;
                }
            }

            if (documents.Count < chunk)
            {
                yield break;
            }

            // The next chunk starts where this one met its last document (its first entry within this chunk's bounds).
            done = FirstEntry(documents[^1], field, from, to, descending);
            if (done is null)
            {
                yield break;
            }
        }
    }

    private static bool Beyond(string entry, string done, bool descending) =>
        descending ? string.CompareOrdinal(entry, done) < 0 : string.CompareOrdinal(entry, done) > 0;

    /// <summary>The document's first entry of <paramref name="field"/> within [low, high] in reading order, or null.</summary>
    private static string? FirstEntry(BsonDocument document, string field, string low, string high, bool descending)
    {
        string? first = null;
        foreach (var entry in EntityDescriptor.EntriesOf(document, field))
        {
            if (string.CompareOrdinal(entry, low) >= 0 && string.CompareOrdinal(entry, high) <= 0 &&
                (first is null || Beyond(first, entry, descending)))
            {
                first = entry;
            }
        }

        return first;
    }
}
