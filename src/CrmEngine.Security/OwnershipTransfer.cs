using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;
using CrmEngine.Core.Storage;

namespace CrmEngine.Security;

/// <summary>What a transfer moved.</summary>
public sealed record TransferResult(string From, string To, int Customers, int Activities, int Orders, bool OnlyOpen)
{
    public string ToText() =>
        $"moved {Customers} customers, {Activities} {(OnlyOpen ? "open " : "")}activities and {Orders} {(OnlyOpen ? "open " : "")}orders from '{From}' to '{To}'\n";
}

/// <summary>
/// <c>crm owners transfer</c>: a departing rep's customers pass to a successor with their activities and orders. Each
/// record is one ordinary write through the pipeline acting as the acting user (one audit entry per record: only the
/// owner changes, the history stays). A customer's activities and orders move first and the customer last, so an
/// interrupted run is simply run again: what moved is no longer owned by <c>from</c> and is not touched twice.
/// </summary>
public sealed class OwnershipTransfer
{
    private readonly IStoreProvider _stores;
    private readonly SecurityAdministration _security;

    public OwnershipTransfer(IStoreProvider stores, SecurityAdministration security)
    {
        _stores = stores ?? throw new ArgumentNullException(nameof(stores));
        _security = security ?? throw new ArgumentNullException(nameof(security));
    }

    /// <param name="from">The owner giving the records up (a user id, possibly deactivated, or <c>team:id</c>).</param>
    /// <param name="to">An active user or an existing team (<c>team:id</c>).</param>
    /// <param name="onlyOpen">Move only planned activities and orders that are not paid or cancelled.</param>
    /// <param name="actingUser">Who does it: must hold customer/activity/order assign over the records; the audit names them.</param>
    public async Task<TransferResult> TransferAsync(string from, string to, bool onlyOpen, string actingUser, IProgress<string>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(from);
        ArgumentException.ThrowIfNullOrWhiteSpace(to);
        var access = await _security.ContextForAsync(actingUser, null, cancellationToken);
        var snapshot = access.Snapshot;
        if (from == to)
        {
            throw new SecurityAdminException($"--from and --to are both '{from}'", "to");
        }

        if (Owners.IsTeam(to, out var team) ? !snapshot.Teams.ContainsKey(team) : !snapshot.Users.TryGetValue(to, out var target) || target.Deactivated)
        {
            throw new SecurityAdminException($"--to '{to}' is not an active user or an existing team:<id> (crm users list shows them)", "to");
        }

        if (!Owners.IsTeam(from, out _) && !snapshot.Users.ContainsKey(from))
        {
            throw new SecurityAdminException($"--from '{from}' is not a user (crm users list shows them)", "from");
        }

        // Reach depends on the owner only, so one check per entity up front keeps a refused run from moving anything.
        foreach (var entity in new[] { EntityNames.Customer, EntityNames.Activity, EntityNames.Order })
        {
            var decision = access.Check(Privilege.Assign, new RecordRef(entity, "", from));
            if (!decision.Allowed)
            {
                throw new SecurityDeniedException($"'{actingUser}' may not reassign {entity} records of '{from}': {decision}", decision);
            }
        }

        var store = _stores.ForActor(actingUser);
        int customers = 0, activities = 0, orders = 0;
        while (true)
        {
            // Moved customers leave the owner index, so the first page is always the next work.
            var page = await store.Customers.FindAsync(IndexedField.Owner, from, 100, null, cancellationToken);
            if (page.Count == 0)
            {
                break;
            }

            foreach (var customer in page)
            {
                activities += await MoveChildrenAsync(store.Activities, customer.Id, from, to, a => a.Owner, (a, o) => a.Owner = o,
                    a => !onlyOpen || a.Status == ActivityStatus.Planned, access, cancellationToken);
                orders += await MoveChildrenAsync(store.Orders, customer.Id, from, to, o => o.Owner, (o, v) => o.Owner = v,
                    o => !onlyOpen || o.Status is not (OrderStatus.Paid or OrderStatus.Cancelled), access, cancellationToken);
                if (await MoveAsync(store.Customers, customer.Id, from, to, c => c.Owner, (c, o) => c.Owner = o, access, cancellationToken))
                {
                    customers++;
                }

                progress?.Report($"{customers} customers, {activities} activities, {orders} orders moved");
            }
        }

        return new TransferResult(from, to, customers, activities, orders, onlyOpen);
    }

    private static async Task<int> MoveChildrenAsync<T>(IEntitySet<T> set, string customerId, string from, string to, Func<T, string?> owner,
        Action<T, string> setOwner, Func<T, bool> wanted, AccessContext access, CancellationToken ct) where T : class, IEntity
    {
        var moved = 0;
        string? after = null;
        while (true)
        {
            var page = await set.FindAsync(IndexedField.CustomerId, customerId, 500, after, ct);
            foreach (var record in page.Where(r => owner(r) == from && wanted(r)))
            {
                if (await MoveAsync(set, record.Id, from, to, owner, setOwner, access, ct))
                {
                    moved++;
                }
            }

            if (page.Count < 500)
            {
                return moved;
            }

            after = page[^1].Id;
        }
    }

    /// <summary>One audited write: re-read, check, change only the owner. A concurrent change is retried on the fresh record.</summary>
    private static async Task<bool> MoveAsync<T>(IEntitySet<T> set, string id, string from, string to, Func<T, string?> owner, Action<T, string> setOwner,
        AccessContext access, CancellationToken ct) where T : class, IEntity
    {
        for (var attempt = 0; ; attempt++)
        {
            var record = await set.GetAsync(id, ct);
            if (record is null || owner(record) != from)
            {
                return false;
            }

            var decision = access.Check(Privilege.Assign, new RecordRef(set.EntityName, id, from));
            if (!decision.Allowed)
            {
                throw new SecurityDeniedException($"{set.EntityName} '{id}': {decision}", decision);
            }

            setOwner(record, to);
            try
            {
                await set.UpdateAsync(record, ct);
                return true;
            }
            catch (ConcurrencyException) when (attempt < 3)
            {
                // Someone else wrote it meanwhile: read it again and move it if it is still from's.
            }
        }
    }
}
