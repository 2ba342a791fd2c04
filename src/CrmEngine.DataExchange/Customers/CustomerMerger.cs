using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;
using CrmEngine.Core;
using CrmEngine.Core.Storage;
using CrmEngine.Security;

namespace CrmEngine.DataExchange.Customers;

/// <summary>A merge, erase or export was refused; nothing (more) was changed. The message says why.</summary>
public sealed class CustomerOperationException(string message, bool notFound = false, bool forbidden = false) : Exception(message)
{
    public bool NotFound { get; } = notFound;

    /// <summary>The acting user lacks a privilege; the message names it (<c>customer:delete</c>). The API answers 403.</summary>
    public bool Forbidden { get; } = forbidden;

    /// <summary>The denial behind <see cref="Forbidden"/> (missing privilege and why).</summary>
    public AccessDecision? Denial { get; init; }
}

public sealed record MergeResult(string KeptId, string RemovedId, int MovedActivities, int MovedOrders, int MovedConsents,
    bool AlreadyMerged, IReadOnlyList<string> OverriddenConflicts)
{
    public string ToText() => AlreadyMerged
        ? $"customer {RemovedId} was already merged into {KeptId}; nothing to do\n"
        : $"merged customer {RemovedId} into {KeptId}: {MovedActivities} activities, {MovedOrders} orders, {MovedConsents} consent entries moved; " +
          $"{RemovedId} now redirects to {KeptId}\n" +
          string.Concat(OverriddenConflicts.Select(c => $"kept value (--force): {c}\n"));
}

/// <summary>
/// Merges one customer into another. Steps, each an ordinary write through the pipeline (rules, audit, change feed),
/// each safe to run again, so an interrupted merge is finished by running it again:
/// 1. the kept card gets the combined fields (<see cref="CustomerCombiner.MergeInto"/>);
/// 2. activities, orders and consent entries of the removed customer are moved to the kept one, in batches;
/// 3. a redirect (removed id → kept id) is stored; 4. the removed customer is deleted.
/// Segment memberships follow by themselves: the segment service re-evaluates the kept customer from the change feed
/// and drops the deleted one.
/// </summary>
public sealed class CustomerMerger
{
    private const int Batch = 500;
    private readonly IStoreProvider _stores;
    private readonly TimeProvider _time;

    internal CustomerMerger(IStoreProvider stores, TimeProvider? time = null)
    {
        _stores = stores;
        _time = time ?? TimeProvider.System;
    }

    /// <param name="access">The acting user's access (write on the kept, delete on the removed customer and write on each
    /// activity and order that moves are checked; consent entries follow the customer before anything changes), or null for the machine operator (the CLI without --as), who may do everything.</param>
    public async Task<MergeResult> MergeAsync(string keepId, string removeId, bool force, string user, CancellationToken cancellationToken = default,
        AccessContext? access = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(keepId);
        ArgumentException.ThrowIfNullOrWhiteSpace(removeId);
        if (keepId == removeId)
        {
            throw new CustomerOperationException($"cannot merge customer {keepId} into itself");
        }

        var store = _stores.ForActor("merge:" + user);
        var redirects = _stores.ForActor("merge:" + user, CustomerRedirects.Owner).Collection<CustomerRedirect>(CustomerRedirects.Collection);
        var keep = await store.Customers.GetAsync(keepId, cancellationToken);
        if (keep is null)
        {
            var moved = await redirects.GetAsync(keepId, cancellationToken);
            var target = moved is null ? null : await CustomerAccess.RedirectShownAsync(access, store, moved.TargetId, cancellationToken);
            throw new CustomerOperationException(target is null
                ? $"customer {keepId} (to keep) does not exist"
                : $"customer {keepId} (to keep) was merged into {target}: merge into {target} instead", notFound: target is null);
        }

        CustomerAccess.Require(access, keep, Privilege.Write, "to keep");
        var remove = await store.Customers.GetAsync(removeId, cancellationToken);
        if (remove is not null)
        {
            CustomerAccess.Require(access, remove, Privilege.Delete, "to remove");
        }
        else
        {
            var done = await redirects.GetAsync(removeId, cancellationToken);
            if (done is not null && done.TargetId == keepId)
            {
                return new MergeResult(keepId, removeId, 0, 0, 0, true, []);
            }

            var target = done is null ? null : await CustomerAccess.RedirectShownAsync(access, store, done.TargetId, cancellationToken);
            throw new CustomerOperationException(target is null
                ? $"customer {removeId} (to remove) does not exist"
                : $"customer {removeId} was already merged into {target}, not into {keepId}", notFound: target is null);
        }

        if (access is not null)
        {
            // Moving a record to another customer rewrites it: the user needs write on every activity and order, checked
            // before anything changes. Consent entries are not checked: they are the data subject's own ledger (no owner)
            // and must follow the person; write on the kept and delete on the removed customer already cover them.
            await RequireWriteAsync(access, store.Activities, EntityNames.Activity, a => a.Owner, removeId, keepId, cancellationToken);
            await RequireWriteAsync(access, store.Orders, EntityNames.Order, o => o.Owner, removeId, keepId, cancellationToken);
        }

        var conflicts = CustomerCombiner.Conflicts(keep, remove, includeCustom: true);
        if (conflicts.Count > 0 && !force)
        {
            throw new CustomerOperationException(
                $"customers {keepId} and {removeId} disagree: {string.Join("; ", conflicts)}. Nothing was changed; with --force the kept customer's values win");
        }

        // 1. The kept card.
        var before = System.Text.Json.JsonSerializer.Serialize(keep);
        CustomerCombiner.MergeInto(keep, remove);
        if (System.Text.Json.JsonSerializer.Serialize(keep) != before)
        {
            keep = await store.Customers.UpdateAsync(keep, cancellationToken);
        }

        // 2. The records that belong to the customer. Each page is checked again as it is read, and written with the
        // versions read: a record whose owner changed since the check above is refused here, and one that changes between
        // this read and its write fails the write (optimistic concurrency), so nothing is moved that was not checked as it is.
        var activities = await MoveAsync(store.Activities, removeId, keepId, a => a.CustomerId = keepId, access, a => a.Owner, cancellationToken);
        var orders = await MoveAsync(store.Orders, removeId, keepId, o => o.CustomerId = keepId, access, o => o.Owner, cancellationToken);
        var consents = await MoveAsync(store.Consents, removeId, keepId, c => c.CustomerId = keepId, null, _ => null, cancellationToken);

        // 3. The redirect, before the delete: the old id never points nowhere.
        var redirect = await redirects.GetAsync(removeId, cancellationToken);
        if (redirect is null)
        {
            await redirects.CreateAsync(new CustomerRedirect { Id = removeId, TargetId = keepId, MergedAt = _time.GetUtcNow(), MergedBy = user }, cancellationToken);
        }
        else if (redirect.TargetId != keepId)
        {
            redirect.TargetId = keepId;
            redirect.MergedAt = _time.GetUtcNow();
            redirect.MergedBy = user;
            await redirects.UpdateAsync(redirect, cancellationToken);
        }

        // 4. The removed customer.
        try
        {
            await store.Customers.DeleteAsync(removeId, remove.Version, cancellationToken);
        }
        catch (ConcurrencyException)
        {
            throw new CustomerOperationException($"customer {removeId} was changed while it was merged; run the merge again to take the change over");
        }

        return new MergeResult(keepId, removeId, activities, orders, consents, false, force ? conflicts : []);
    }

    /// <summary>Refuses the merge (naming the privilege and the record) when the user may not write one record of the removed customer.</summary>
    private static async Task RequireWriteAsync<T>(AccessContext access, IEntitySet<T> set, string entity, Func<T, string?> owner, string fromId, string toId,
        CancellationToken ct)
        where T : class, IEntity, new()
    {
        string? after = null;
        while (true)
        {
            var page = await set.FindAsync(IndexedField.CustomerId, fromId, Batch, after, ct);
            CustomerAccess.RequireWriteOnEach(access, entity, page, owner, fromId, $"would move to customer {toId}");

            if (page.Count < Batch)
            {
                return;
            }

            after = page[^1].Id;
        }
    }

    /// <param name="access">Checks write on each record as read (null: no check: the operator, or consent entries).</param>
    private static async Task<int> MoveAsync<T>(IEntitySet<T> set, string fromId, string toId, Action<T> repoint, AccessContext? access,
        Func<T, string?> owner, CancellationToken ct)
        where T : class, IEntity, new()
    {
        var moved = 0;
        while (true)
        {
            var page = await set.FindAsync(IndexedField.CustomerId, fromId, Batch, cancellationToken: ct);
            if (page.Count == 0)
            {
                return moved;
            }

            CustomerAccess.RequireWriteOnEach(access, set.EntityName, page, owner, fromId, $"would move to customer {toId}",
                $"It changed while the merge ran: {moved} {set.EntityName} records had been moved, nothing more was changed; " +
                $"customer {fromId} stays until the merge is run again by a user who may write it");

            foreach (var item in page)
            {
                repoint(item);
            }

            var results = await set.WriteManyAsync(page.Select(p => new BulkWrite<T>(BulkOperation.Update, p)).ToList(), ct);
            if (results.FirstOrDefault(r => !r.Succeeded) is { } failed)
            {
                throw new CustomerOperationException(
                    $"{set.EntityName} {page[failed.Index].Id} could not be moved to customer {toId}: {failed.Error!.Message}. " +
                    $"{moved + results.Count(r => r.Succeeded)} records were moved; run the merge again after fixing it");
            }

            moved += page.Count;
        }
    }
}
