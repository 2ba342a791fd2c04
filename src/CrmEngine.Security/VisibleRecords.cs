using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;

namespace CrmEngine.Security;

/// <summary>
/// Pages through the records of one entity that a <see cref="QueryFilter"/> keeps, in id order, with the same cursor
/// (<c>afterId</c>) as <see cref="IEntitySet{T}.ListAsync"/>: each visible owner is a range of the owner index, read in
/// slices and merged by id (a k-way merge, so a manager with hundreds of visible owners reads about one page of records,
/// not the collection), shared records are read by id. Paging is stable (a page never repeats or skips a visible record)
/// and a hidden record never reaches the caller, so counts and "next" links are of visible records only.
/// </summary>
/// <remarks>
/// Above <see cref="MaxOwnerScans"/> owners a page is first read in id order within a budget of
/// <see cref="ScanRecordsPerOwner"/> records per owner (a manager who sees much of the collection fills it there); only
/// sparse visibility falls through to the merge.
/// Why a merge of owner ranges and not one query "owner IN (...)": the owner index holds <c>owner\u0001id</c> entries, so
/// an IN query would come back in owner order and would have to read and sort every visible record to cut one page in
/// id order. Each owner range is already in id order; merging them reads only what the page needs.
/// </remarks>
public static class VisibleRecords
{
    /// <summary>Up to this many owners each range is read a whole page at a time; above it, in slices that grow as they are used.</summary>
    public const int MaxOwnerScans = 64;

    public static Task<IReadOnlyList<T>> PageAsync<T>(IEntitySet<T> set, QueryFilter filter, Func<T, string?> owner, int limit = 100,
        string? afterId = null, CancellationToken cancellationToken = default) where T : class, IEntity =>
        PageAsync(set, filter, owner, limit, afterId, ScanRecordsPerOwner, cancellationToken);

    /// <summary><see cref="PageAsync{T}(IEntitySet{T}, QueryFilter, Func{T, string?}, int, string?, CancellationToken)"/> with the scan budget per owner given (0: merge at once; tests).</summary>
    internal static async Task<IReadOnlyList<T>> PageAsync<T>(IEntitySet<T> set, QueryFilter filter, Func<T, string?> owner, int limit,
        string? afterId, int scanRecordsPerOwner, CancellationToken cancellationToken) where T : class, IEntity
    {
        if (!Checked(set, filter, owner, limit))
        {
            return [];
        }

        if (filter.All)
        {
            return await set.ListAsync(limit, afterId, cancellationToken);
        }

        // Records without a known owner are not in one index range: a filter that shows them (root-unit depth) is a scan.
        if (filter.Unowned || !set.IndexedFields.Contains(IndexedField.Owner))
        {
            return await ScanAsync(set, filter, owner, limit, afterId, cancellationToken);
        }

        if (filter.Owners.Count > MaxOwnerScans)
        {
            // Many owners: merging costs about one index query per owner, a filtered read in id order about one record per
            // limit/(visible share). Read in id order first, within a budget worth the merge (a manager who sees much of
            // the collection fills the page here); only sparse visibility falls through to the merge.
            var budget = filter.Owners.Count * scanRecordsPerOwner;
            var (page, complete) = await ScanWithinAsync(set, filter, owner, limit, afterId, budget, cancellationToken);
            if (complete)
            {
                return page;
            }
        }

        return await MergeAsync(set, filter, limit, afterId, cancellationToken);
    }

    /// <summary>
    /// Records found by one look-up (<paramref name="field"/> = <paramref name="value"/>) that the filter keeps, in id
    /// order after <paramref name="afterId"/>: the look-up's index range is read on until <paramref name="limit"/> visible
    /// records are found, so the page is cut from visible records only.
    /// </summary>
    public static async Task<IReadOnlyList<T>> FindAsync<T>(IEntitySet<T> set, QueryFilter filter, Func<T, string?> owner, string field, string value,
        int limit = 100, string? afterId = null, CancellationToken cancellationToken = default) where T : class, IEntity
    {
        if (!Checked(set, filter, owner, limit))
        {
            return [];
        }

        if (filter.All || (field == IndexedField.Owner && filter.Owners.Contains(value)))
        {
            return await set.FindAsync(field, value, limit, afterId, cancellationToken);
        }

        if (field == IndexedField.Owner && !filter.Unowned)
        {
            // An owner whose records the caller does not see: only records of theirs shared with the caller can match, so
            // their (possibly long) index range is not read at all.
            return (await SharedAsync(set, filter, afterId, cancellationToken)).Where(r => owner(r) == value).Take(limit).ToList();
        }

        var slice = Math.Max(limit * 2, 100);
        var result = new List<T>(limit);
        var cursor = afterId;
        while (result.Count < limit)
        {
            var page = await set.FindAsync(field, value, slice, cursor, cancellationToken);
            result.AddRange(page.Where(r => filter.Matches(r.Id, owner(r))).Take(limit - result.Count));
            if (page.Count < slice)
            {
                break;
            }

            cursor = page[^1].Id;
        }

        return result;
    }

    /// <summary>Checks the arguments; false when the filter shows nothing.</summary>
    private static bool Checked<T>(IEntitySet<T> set, QueryFilter filter, Func<T, string?> owner, int limit) where T : class, IEntity
    {
        ArgumentNullException.ThrowIfNull(set);
        ArgumentNullException.ThrowIfNull(filter);
        ArgumentNullException.ThrowIfNull(owner);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        return !filter.IsEmpty;
    }

    /// <summary>Counts the visible records (for "total" in a search answer).</summary>
    public static async Task<long> CountAsync<T>(IEntitySet<T> set, QueryFilter filter, Func<T, string?> owner, CancellationToken cancellationToken = default)
        where T : class, IEntity
    {
        if (filter.All)
        {
            return await set.CountAsync(cancellationToken);
        }

        long count = 0;
        string? after = null;
        while (true)
        {
            var page = await PageAsync(set, filter, owner, 1000, after, cancellationToken);
            count += page.Count;
            if (page.Count < 1000)
            {
                return count;
            }

            after = page[^1].Id;
        }
    }

    private static async Task<IReadOnlyList<T>> MergeAsync<T>(IEntitySet<T> set, QueryFilter filter, int limit, string? afterId,
        CancellationToken cancellationToken) where T : class, IEntity
    {
        // Few owners: each range gives a whole page at once (one query per owner, exact). Many: start small and double
        // the slice of a range each time it is used up, so ranges that never reach the page cost one short read.
        var first = filter.Owners.Count <= MaxOwnerScans ? limit : Math.Min(limit, 2);
        var heads = new PriorityQueue<Range<T>, string>(StringComparer.Ordinal);
        foreach (var o in filter.Owners)
        {
            var range = new Range<T>(o, first);
            if (await range.FillAsync(set, afterId, limit, cancellationToken))
            {
                heads.Enqueue(range, range.Head.Id);
            }
        }

        var shared = await SharedAsync(set, filter, afterId, cancellationToken);

        var result = new List<T>(limit);
        var s = 0;
        while (result.Count < limit)
        {
            T next;
            if (heads.TryPeek(out var range, out var headId) && (s >= shared.Count || string.CompareOrdinal(headId, shared[s].Id) <= 0))
            {
                heads.Dequeue();
                next = range.Take();
                if (await range.FillAsync(set, next.Id, limit, cancellationToken))
                {
                    heads.Enqueue(range, range.Head.Id);
                }
            }
            else if (s < shared.Count)
            {
                next = shared[s++];
            }
            else
            {
                break;
            }

            // A shared record can also be owned by a visible owner: the merge meets it twice in a row.
            if (result.Count == 0 || !string.Equals(result[^1].Id, next.Id, StringComparison.Ordinal))
            {
                result.Add(next);
            }
        }

        return result;
    }

    /// <summary>The records shared with the caller after the cursor, in id order (deleted ones left out).</summary>
    private static async Task<List<T>> SharedAsync<T>(IEntitySet<T> set, QueryFilter filter, string? afterId, CancellationToken cancellationToken)
        where T : class, IEntity
    {
        var shared = new List<T>();
        foreach (var id in filter.SharedIds.Where(id => afterId is null || string.CompareOrdinal(id, afterId) > 0).Order(StringComparer.Ordinal))
        {
            if (await set.GetAsync(id, cancellationToken) is { } record)
            {
                shared.Add(record);
            }
        }

        return shared;
    }

    /// <summary>The not yet merged part of one owner's index range.</summary>
    private sealed class Range<T>(string owner, int slice) where T : class, IEntity
    {
        private IReadOnlyList<T> _buffer = [];
        private int _position;
        private bool _exhausted;
        private int _slice = slice;

        public T Head => _buffer[_position];

        public T Take() => _buffer[_position++];

        /// <summary>True when a head is available; reads the next slice after <paramref name="after"/> when the buffer is used up.</summary>
        public async Task<bool> FillAsync(IEntitySet<T> set, string? after, int limit, CancellationToken cancellationToken)
        {
            if (_position < _buffer.Count)
            {
                return true;
            }

            if (_exhausted)
            {
                return false;
            }

            _buffer = await set.FindAsync(IndexedField.Owner, owner, _slice, after, cancellationToken);
            _position = 0;
            _exhausted = _buffer.Count < _slice;
            _slice = Math.Min(_slice * 2, Math.Max(limit, 2));
            return _buffer.Count > 0;
        }
    }

    /// <summary>Records read in id order, per visible owner, before a many-owner page switches to the merge.</summary>
    internal const int ScanRecordsPerOwner = 8;

    /// <summary>The visible records after the cursor in id order, reading at most <paramref name="budget"/> records; complete when the page is (or the collection ended).</summary>
    private static async Task<(IReadOnlyList<T> Page, bool Complete)> ScanWithinAsync<T>(IEntitySet<T> set, QueryFilter filter, Func<T, string?> owner,
        int limit, string? afterId, int budget, CancellationToken cancellationToken) where T : class, IEntity
    {
        var result = new List<T>(limit);
        var cursor = afterId;
        var read = 0;
        while (read < budget)
        {
            var size = Math.Clamp(budget - read, 1, Math.Max(limit * 4, 200));
            var page = await set.ListAsync(size, cursor, cancellationToken);
            result.AddRange(page.Where(r => filter.Matches(r.Id, owner(r))).Take(limit - result.Count));
            if (result.Count == limit || page.Count < size)
            {
                return (result, true);
            }

            read += page.Count;
            cursor = page[^1].Id;
        }

        return (result, false);
    }

    private static async Task<IReadOnlyList<T>> ScanAsync<T>(IEntitySet<T> set, QueryFilter filter, Func<T, string?> owner, int limit, string? afterId,
        CancellationToken cancellationToken) where T : class, IEntity =>
        (await ScanWithinAsync(set, filter, owner, limit, afterId, int.MaxValue, cancellationToken)).Page;
}
