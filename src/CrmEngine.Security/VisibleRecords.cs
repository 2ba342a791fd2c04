using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;

namespace CrmEngine.Security;

/// <summary>
/// Pages through the records of one entity that a <see cref="QueryFilter"/> keeps, in id order, with the same cursor
/// (<c>afterId</c>) as <see cref="IEntitySet{T}.ListAsync"/>: each visible owner is one range scan of the owner index, the
/// scans are merged by id, shared records are read by id. Paging is stable (a page never repeats or skips a visible
/// record) and a hidden record never reaches the caller, so counts and "next" links are of visible records only.
/// </summary>
public static class VisibleRecords
{
    /// <summary>Above this many owners a filtered scan in id order is cheaper than one index scan per owner.</summary>
    public const int MaxOwnerScans = 64;

    public static async Task<IReadOnlyList<T>> PageAsync<T>(IEntitySet<T> set, QueryFilter filter, Func<T, string?> owner, int limit = 100,
        string? afterId = null, CancellationToken cancellationToken = default) where T : class, IEntity
    {
        ArgumentNullException.ThrowIfNull(set);
        ArgumentNullException.ThrowIfNull(filter);
        ArgumentNullException.ThrowIfNull(owner);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        if (filter.IsEmpty)
        {
            return [];
        }

        if (filter.All)
        {
            return await set.ListAsync(limit, afterId, cancellationToken);
        }

        if (filter.Unowned || filter.Owners.Count > MaxOwnerScans || !set.IndexedFields.Contains(IndexedField.Owner))
        {
            return await ScanAsync(set, filter, owner, limit, afterId, cancellationToken);
        }

        var candidates = new List<T>();
        foreach (var o in filter.Owners)
        {
            candidates.AddRange(await set.FindAsync(IndexedField.Owner, o, limit, afterId, cancellationToken));
        }

        foreach (var id in filter.SharedIds.Where(id => afterId is null || string.CompareOrdinal(id, afterId) > 0))
        {
            if (await set.GetAsync(id, cancellationToken) is { } shared)
            {
                candidates.Add(shared);
            }
        }

        // Every source is in id order and gave up to `limit` records after the cursor, so the first `limit` of the union are exact.
        return candidates.DistinctBy(r => r.Id, StringComparer.Ordinal).Order(IdOrder<T>.Instance).Take(limit).ToList();
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

    private static async Task<IReadOnlyList<T>> ScanAsync<T>(IEntitySet<T> set, QueryFilter filter, Func<T, string?> owner, int limit, string? afterId,
        CancellationToken cancellationToken) where T : class, IEntity
    {
        var result = new List<T>(limit);
        var cursor = afterId;
        while (result.Count < limit)
        {
            var page = await set.ListAsync(Math.Max(limit, 500), cursor, cancellationToken);
            result.AddRange(page.Where(r => filter.Matches(r.Id, owner(r))).Take(limit - result.Count));
            if (page.Count == 0 || page.Count < Math.Max(limit, 500))
            {
                break;
            }

            cursor = page[^1].Id;
        }

        return result;
    }

    private sealed class IdOrder<T> : IComparer<T> where T : IEntity
    {
        public static readonly IdOrder<T> Instance = new();

        public int Compare(T? x, T? y) => string.CompareOrdinal(x?.Id, y?.Id);
    }
}
