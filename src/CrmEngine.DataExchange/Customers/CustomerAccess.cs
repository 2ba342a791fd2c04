using System.Text.Json;
using CrmEngine.Abstractions.Model;
using CrmEngine.Security;

namespace CrmEngine.DataExchange.Customers;

/// <summary>
/// Record access for merge, erase, export and import when a user (the API caller, or the CLI's <c>--as</c>) runs them.
/// A null <see cref="AccessContext"/> is the machine operator: the CLI without <c>--as</c>, with every right.
/// </summary>
public static class CustomerAccess
{
    /// <summary>
    /// Refuses <paramref name="privilege"/> on <paramref name="customer"/>: a customer the user may not even read is
    /// "does not exist" (id guessing learns nothing), one they may read but not change names the missing privilege.
    /// </summary>
    public static void Require(AccessContext? access, Customer customer, Privilege privilege, string? role)
    {
        if (access is null)
        {
            return;
        }

        var record = new RecordRef(EntityNames.Customer, customer.Id, customer.Owner);
        if (!access.Check(Privilege.Read, record).Allowed)
        {
            throw new CustomerOperationException($"customer {customer.Id}{(role is null ? "" : " (" + role + ")")} does not exist", notFound: true);
        }

        if (access.Check(privilege, record) is { Allowed: false } denied)
        {
            throw Refused(denied);
        }
    }

    /// <summary>
    /// Refuses an operation on a customer (merge, erase) that rewrites the customer's activities or orders when the user may
    /// not write one of <paramref name="records"/>: the denial names the privilege and the record, and says what the
    /// operation would have done to it (<paramref name="doing"/>) and what was changed (<paramref name="changed"/>).
    /// </summary>
    public static void RequireWriteOnEach<T>(AccessContext? access, string entity, IEnumerable<T> records, Func<T, string?> owner, string customerId,
        string doing, string changed = "Nothing was changed")
        where T : IEntity
    {
        if (access is null)
        {
            return;
        }

        foreach (var item in records)
        {
            if (access.Check(Privilege.Write, new RecordRef(entity, item.Id, owner(item))) is { Allowed: false } denied)
            {
                throw Refused(AccessDecision.Deny(denied.Missing!, $"{entity} {item.Id} of customer {customerId} {doing}, which is a write: {denied.Reason}. {changed}"));
            }
        }
    }

    /// <summary>
    /// The customer a merged-away id now leads to, as a message may name it: only to a caller who may read that customer
    /// (the rule of the API's 308), else null and the caller is told the id does not exist. The machine operator sees it.
    /// </summary>
    public static async Task<string?> RedirectShownAsync(AccessContext? access, Abstractions.Store.ICrmStore store, string targetId, CancellationToken ct)
    {
        if (access is null)
        {
            return targetId;
        }

        var target = await store.Customers.GetAsync(targetId, ct);
        return target is not null && access.Check(Privilege.Read, new RecordRef(EntityNames.Customer, target.Id, target.Owner)).Allowed ? targetId : null;
    }

    /// <summary>The exception for a denial: <see cref="CustomerOperationException.Forbidden"/>, the decision kept.</summary>
    public static CustomerOperationException Refused(AccessDecision denied) => new(denied.ToString(), forbidden: true) { Denial = denied };

    /// <summary>Refuses a bulk operation (export) the user's roles give no depth for at all; null when some records are reachable.</summary>
    public static CustomerOperationException? RefusalOf(QueryFilter filter)
    {
        ArgumentNullException.ThrowIfNull(filter);
        if (!filter.IsEmpty || filter.Refusal is not { } refusal)
        {
            return null;
        }

        var missing = filter.Entity + ":" + AccessContext.Name(filter.Privilege);
        return Refused(AccessDecision.Deny(missing, refusal.StartsWith(missing + ": ", StringComparison.Ordinal) ? refusal[(missing.Length + 2)..] : refusal));
    }

    /// <summary>
    /// The check an import makes per customer it writes, as <paramref name="access"/>'s user: create (owned by that user
    /// unless the file names an owner the user may assign to), write on a stored customer (and assign when the owner
    /// changes), and no change to a protected field the user may not write. Returns why not, or null. A create without
    /// an owner gets the user as owner.
    /// </summary>
    public static Func<string?, Customer, string?> ForImport(AccessContext access)
    {
        ArgumentNullException.ThrowIfNull(access);
        var mask = access.Fields(EntityNames.Customer);
        return (storedJson, after) =>
        {
            var before = storedJson is null ? null : JsonSerializer.Deserialize<Customer>(storedJson);
            var decisions = new List<AccessDecision>();
            if (before is null)
            {
                // A person's (or integration user's) import owns what it creates; a key without a user (sys-api) and an
                // access model without users leave new cards unowned, as the API's writes do.
                if (!access.Unrestricted && access.UserId != SecurityAdministration.SystemUsers.Api && access.Snapshot.Users.ContainsKey(access.UserId))
                {
                    after.Owner ??= access.UserId;
                }

                decisions.Add(access.CheckCreate(EntityNames.Customer, after.Owner));
                if (after.Owner is not null && after.Owner != access.UserId)
                {
                    decisions.Add(access.Check(Privilege.Assign, new RecordRef(EntityNames.Customer, "", after.Owner)));
                }

                decisions.Add(mask.CheckWrite<Customer>(null, after));
            }
            else
            {
                var record = new RecordRef(EntityNames.Customer, before.Id, before.Owner);
                if (!access.Check(Privilege.Read, record).Allowed)
                {
                    // Matched a card the user cannot see: say no more than that.
                    return $"matches a customer that user '{access.UserId}' may not change ({EntityNames.Customer}:write)";
                }

                decisions.Add(access.Check(Privilege.Write, record));
                if (before.Owner != after.Owner)
                {
                    decisions.Add(access.Check(Privilege.Assign, record));
                }

                decisions.Add(mask.CheckWrite(before, after));
            }

            // Not FirstOrDefault: the default of the struct is a denial.
            return decisions.Where(d => !d.Allowed).Select(d => d.ToString()).FirstOrDefault();
        };
    }
}
