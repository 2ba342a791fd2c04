using System.Globalization;
using CrmEngine.Abstractions.Model;
using CrmEngine.Core;
using CrmEngine.Core.Storage;
using CrmEngine.Security;
using LiteDB;

namespace CrmEngine.DataExchange.Customers;

/// <summary>The audit stub of an erased customer (collection <c>dataexchange_erasures</c>, id = customer id).</summary>
public sealed class ErasureRecord : Entity
{
    public DateTimeOffset ErasedAt { get; set; }
    public string ErasedBy { get; set; } = "";
    public string Reason { get; set; } = "";
}

public sealed record EraseResult(string CustomerId, int Activities, int Consents, int AuditEntriesScrubbed, DateTimeOffset ErasedAt,
    IReadOnlyList<string>? Elsewhere = null)
{
    public string ToText() =>
        $"erased customer {CustomerId}: card, {Activities} activities and {Consents} consent entries cleared of personal data, " +
        $"{AuditEntriesScrubbed} audit entries scrubbed; stub kept (erased at {ErasedAt:O})\n" +
        string.Concat((Elsewhere ?? []).Select(line => "  " + line + "\n"));
}

/// <summary>
/// GDPR erasure of one customer. Personal data leaves the card (name, e-mails, phones, addresses, contact persons,
/// external ids, profile, custom fields, free text), its activities (subject, body, outcome) and consent entries
/// (source text); the old values are then scrubbed from the field-level audit log of those records (and of customers
/// that were merged into this one). Kept: ids, kind, status, stage, owner, amounts and currency, orders (no personal
/// fields), consent decisions (purpose, channel, granted, time), the change feed (ids only) and the stub with who
/// erased it, when and why. Running it again is harmless.
/// </summary>
public sealed class CustomerEraser
{
    public const string Erased = "[erased]";
    public const string Collection = "erasures";

    /// <summary>Customer fields whose audit values are not personal and stay readable.</summary>
    private static readonly HashSet<string> NonPersonal = new(StringComparer.Ordinal)
        { "Id", "Version", "CreatedAt", "UpdatedAt", "Kind", "Status", "Stage", "Owner", "Currency", "OverdueAmount", "CreditLimit", "CreditLevel", "Blacklisted" };

    private static readonly HashSet<string> PersonalActivityFields = new(StringComparer.Ordinal) { "Subject", "Body", "Outcome" };
    private static readonly HashSet<string> PersonalConsentFields = new(StringComparer.Ordinal) { "Source" };

    private readonly IStoreProvider _stores;
    private readonly CrmDatabase _database;
    private readonly TimeProvider _time;

    private readonly IReadOnlyList<ICustomerErasureStep> _steps;

    internal CustomerEraser(IStoreProvider stores, CrmDatabase database, TimeProvider? time = null, IEnumerable<ICustomerErasureStep>? steps = null)
    {
        _steps = steps?.ToList() ?? [];
        _stores = stores;
        _database = database;
        _time = time ?? TimeProvider.System;
    }

    /// <param name="access">The acting user's access (delete on the customer and write on each of its activities are checked
    /// before anything changes), or null for the machine operator.</param>
    public async Task<EraseResult> EraseAsync(string customerId, string reason, string user, CancellationToken cancellationToken = default,
        AccessContext? access = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(customerId);
        if (string.IsNullOrWhiteSpace(reason))
        {
            throw new CustomerOperationException("an erasure needs a reason (--reason), kept in the audit stub");
        }

        var actor = "erase:" + user;
        var store = _stores.ForActor(actor);
        var owned = _stores.ForActor(actor, CustomerRedirects.Owner);
        var customer = await store.Customers.GetAsync(customerId, cancellationToken);
        if (customer is null)
        {
            var redirect = await owned.Collection<CustomerRedirect>(CustomerRedirects.Collection).GetAsync(customerId, cancellationToken);
            var target = redirect is null ? null : await CustomerAccess.RedirectShownAsync(access, store, redirect.TargetId, cancellationToken);
            throw new CustomerOperationException(target is null
                ? $"customer {customerId} does not exist"
                : $"customer {customerId} was merged into {target}: erase {target}", notFound: target is null);
        }

        CustomerAccess.Require(access, customer, Privilege.Delete, null);
        // Clearing an activity's text rewrites it: the user needs write on every one, checked before anything changes.
        // The versions read here are the ones written below, so an activity changed in between (for example given to
        // another owner) fails that write instead of being erased unchecked. Orders hold no personal data and are not
        // touched; consent entries are the person's own ledger and follow the customer, as in a merge.
        var activities = await store.Activities.FindAllAsync(customerId, cancellationToken);
        CustomerAccess.RequireWriteOnEach(access, EntityNames.Activity, activities, a => a.Owner, customerId, "would be cleared of personal data");

        customer.Name = Erased;
        customer.Emails.Clear();
        customer.Phones.Clear();
        customer.Addresses.Clear();
        customer.Contacts.Clear();
        customer.ExternalIds.Clear();
        customer.Custom.Clear();
        customer.Tags = ["erased"];
        customer.Profile = new CustomerProfile();
        customer.TradingHabits = null;
        customer.SalesStatus = null;
        customer.PaymentTerms = null;
        customer.NextVisitAt = null;
        customer.VisitIntervalDays = null;
        customer.VerifiedAt = null;
        customer.BlacklistReason = customer.Blacklisted ? Erased : null;
        await store.Customers.UpdateAsync(customer, cancellationToken);

        foreach (var a in activities)
        {
            a.Subject = Erased;
            a.Body = null;
            a.Outcome = null;
        }

        await WriteAllAsync(store.Activities, activities, cancellationToken);
        var consents = await store.Consents.FindAllAsync(customerId, cancellationToken);
        foreach (var c in consents)
        {
            c.Source = Erased;
        }

        await WriteAllAsync(store.Consents, consents, cancellationToken);

        var at = _time.GetUtcNow();
        var stubs = owned.Collection<ErasureRecord>(Collection);
        var stub = await stubs.GetAsync(customerId, cancellationToken);
        if (stub is null)
        {
            await stubs.CreateAsync(new ErasureRecord { Id = customerId, ErasedAt = at, ErasedBy = user, Reason = reason }, cancellationToken);
        }
        else
        {
            stub.ErasedAt = at;
            stub.ErasedBy = user;
            stub.Reason = reason;
            await stubs.UpdateAsync(stub, cancellationToken);
        }

        // Customers merged into this one carried the same person's data; their history is scrubbed too.
        var mergedIn = new List<string>();
        string? after = null;
        var redirects = owned.Collection<CustomerRedirect>(CustomerRedirects.Collection);
        while (true)
        {
            var page = await redirects.ListAsync(1000, after, cancellationToken);
            mergedIn.AddRange(page.Where(r => r.TargetId == customerId).Select(r => r.Id));
            if (page.Count < 1000)
            {
                break;
            }

            after = page[^1].Id;
        }

        var targets = new List<(string Entity, string Id, Func<string, bool> Personal)>();
        foreach (var id in mergedIn.Append(customerId))
        {
            targets.Add((EntityNames.Customer, id, f => !NonPersonal.Contains(TopField(f))));
        }

        targets.AddRange(activities.Select(a => (EntityNames.Activity, a.Id, (Func<string, bool>)(f => PersonalActivityFields.Contains(TopField(f))))));
        targets.AddRange(consents.Select(c => (EntityNames.Consent, c.Id, (Func<string, bool>)(f => PersonalConsentFields.Contains(TopField(f))))));
        var scrubbed = await ScrubAuditAsync(targets);
        // Last: a failure here leaves the card erased, and running the erase again repeats the steps (they are idempotent).
        var elsewhere = new List<string>();
        foreach (var step in _steps)
        {
            elsewhere.Add(await step.EraseAsync(customerId, cancellationToken));
        }

        return new EraseResult(customerId, activities.Count, consents.Count, scrubbed, at, elsewhere);
    }

    private static string TopField(string field) => field.Split('.', '[')[0];

    private static async Task WriteAllAsync<T>(Abstractions.Store.IEntitySet<T> set, IReadOnlyList<T> items, CancellationToken ct) where T : class, IEntity, new()
    {
        foreach (var chunk in items.Chunk(500))
        {
            var results = await set.WriteManyAsync(chunk.Select(i => new BulkWrite<T>(BulkOperation.Update, i)).ToList(), ct);
            if (results.FirstOrDefault(r => !r.Succeeded) is { } failed)
            {
                throw new CustomerOperationException($"{set.EntityName} {chunk[failed.Index].Id} could not be erased: {failed.Error!.Message}; run the erase again");
            }
        }
    }

    /// <summary>
    /// Replaces the before/after values of personal fields in the audit documents of these records (the audit log's
    /// documents only; the writer thread, one transaction). Field names, times, actors and operations stay.
    /// </summary>
    private async Task<int> ScrubAuditAsync(IReadOnlyList<(string Entity, string Id, Func<string, bool> Personal)> targets)
    {
        var erasedJson = System.Text.Json.JsonSerializer.Serialize(Erased);
        return await _database.WriteAsync(_ =>
        {
            var audit = _database.Database.GetCollection(CrmDatabase.AuditCollection);
            var count = 0;
            foreach (var (entity, id, personal) in targets)
            {
                var prefix = entity + "\u0001" + id + "\u0001";
                foreach (var doc in audit.Find(Query.Between("_id", prefix, entity + "\u0001" + id + "\u0002")).ToList())
                {
                    var changed = false;
                    if (doc.ContainsKey("after"))
                    {
                        // A create's image is kept whole; scrubbed, it is stored as field changes like any other entry.
                        doc["changes"] = AuditDiff.ToBson(AuditDiff.ChangesOf(doc));
                        doc.Remove("after");
                        changed = true;
                    }

                    foreach (var change in doc["changes"].AsArray)
                    {
                        var c = change.AsDocument;
                        if (!personal(c["f"].AsString))
                        {
                            continue;
                        }

                        foreach (var side in new[] { "b", "a" })
                        {
                            if (c.TryGetValue(side, out var v) && v.IsString && v.AsString != erasedJson && v.AsString != "null")
                            {
                                c[side] = erasedJson;
                                changed = true;
                            }
                        }
                    }

                    if (changed)
                    {
                        audit.Update(doc);
                        count++;
                    }
                }
            }

            return count;
        });
    }
}

internal static class CustomerRecords
{
    /// <summary>Every record of one customer in a collection with a customerId look-up, a page at a time.</summary>
    public static async Task<IReadOnlyList<T>> FindAllAsync<T>(this Abstractions.Store.IEntitySet<T> set, string customerId, CancellationToken ct)
        where T : class, IEntity
    {
        var all = new List<T>();
        string? after = null;
        while (true)
        {
            var page = await set.FindAsync(Abstractions.Store.IndexedField.CustomerId, customerId, 1000, after, ct);
            all.AddRange(page);
            if (page.Count < 1000)
            {
                return all;
            }

            after = page[^1].Id;
        }
    }

    public static string Iso(DateTimeOffset at) => at.ToString("O", CultureInfo.InvariantCulture);
}

/// <summary>
/// More personal data to erase with a customer, held by a part of the engine DataExchange does not know (the mail outbox:
/// addresses and models of mail already sent). Registered in DI; <see cref="CustomerEraser"/> runs every step after the
/// card is erased, for the CLI and the API alike. Returns one line for the result ("mail: 3 messages scrubbed").
/// </summary>
public interface ICustomerErasureStep
{
    Task<string> EraseAsync(string customerId, CancellationToken cancellationToken);
}
