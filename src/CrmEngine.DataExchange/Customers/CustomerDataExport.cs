using System.Text.Json;
using System.Text.Json.Serialization;
using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;
using CrmEngine.Core.Storage;
using CrmEngine.Api.Resources;
using CrmEngine.Rules.Segments;
using CrmEngine.Security;
using LiteDB;

namespace CrmEngine.DataExchange.Customers;

/// <summary>
/// Everything held about one customer, as JSON (a GDPR access request): the card, its activities, orders and consent
/// entries, the audit history of each of them, segment memberships, ids merged into it and the erasure stub if any.
/// </summary>
public sealed class CustomerDataExport
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter() },
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    private readonly IStoreProvider _stores;
    private readonly CrmDatabase _database;
    private readonly TimeProvider _time;
    private readonly Func<SegmentService?> _segments;

    /// <param name="segments">The rules engine's segments (null when the host has none): they judge which memberships a user may see.</param>
    internal CustomerDataExport(IStoreProvider stores, CrmDatabase database, TimeProvider? time = null, Func<SegmentService?>? segments = null)
    {
        _stores = stores;
        _database = database;
        _time = time ?? TimeProvider.System;
        _segments = segments ?? (() => null);
    }

    /// <param name="access">The acting user: needs <c>export</c> on the customer; fields hidden from them are left out of the
    /// card and of the customer's audit history. Null: the machine operator.</param>
    public async Task<string> ExportJsonAsync(string customerId, CancellationToken cancellationToken = default, AccessContext? access = null)
    {
        var store = _stores.ForActor("system:export", CustomerRedirects.Owner);
        var customer = await store.Customers.GetAsync(customerId, cancellationToken);
        if (customer is null)
        {
            var redirect = await store.Collection<CustomerRedirect>(CustomerRedirects.Collection).GetAsync(customerId, cancellationToken);
            var target = redirect is null ? null : await CustomerAccess.RedirectShownAsync(access, store, redirect.TargetId, cancellationToken);
            throw new CustomerOperationException(target is null
                ? $"customer {customerId} does not exist"
                : $"customer {customerId} was merged into {target}: export {target}", notFound: target is null);
        }

        CustomerAccess.Require(access, customer, Privilege.Export, null);
        var hidden = access?.Fields(EntityNames.Customer);
        // Activities, orders and consent entries the user may not read are left out (the export says how many); fields
        // hidden from the user are absent from the records and from their audit history.
        var audit = Masked(await store.Audit.ForEntityAsync(EntityNames.Customer, customerId, cancellationToken), hidden);
        var activities = await VisibleAsync(store, access, EntityNames.Activity, await store.Activities.FindAllAsync(customerId, cancellationToken), a => a.Owner, audit, cancellationToken);
        var orders = await VisibleAsync(store, access, EntityNames.Order, await store.Orders.FindAllAsync(customerId, cancellationToken), o => o.Owner, audit, cancellationToken);
        var consents = await VisibleAsync(store, access, EntityNames.Consent, await store.Consents.FindAllAsync(customerId, cancellationToken), _ => null, audit, cancellationToken);

        var mergedIn = new List<CustomerRedirect>();
        string? after = null;
        var redirects = store.Collection<CustomerRedirect>(CustomerRedirects.Collection);
        while (true)
        {
            var page = await redirects.ListAsync(1000, after, cancellationToken);
            mergedIn.AddRange(page.Where(r => r.TargetId == customerId));
            if (page.Count < 1000)
            {
                break;
            }

            after = page[^1].Id;
        }

        var erasure = await store.Collection<ErasureRecord>(CustomerEraser.Collection).GetAsync(customerId, cancellationToken);
        var segments = Segments(customerId);
        var shownSegments = await VisibleSegmentsAsync(segments, customerId, access, cancellationToken);
        var document = new
        {
            exportedAt = _time.GetUtcNow(),
            customer = hidden is null ? (object)customer : hidden.Apply(System.Text.Json.JsonSerializer.SerializeToNode(customer, Json)!.AsObject()),
            activities = activities.Items,
            orders = orders.Items,
            consents = consents.Items,
            leftOut = access is null ? null : new
            {
                activities = activities.LeftOut,
                orders = orders.LeftOut,
                consents = consents.LeftOut,
                segments = segments.Count - shownSegments.Count,
                reason = $"records of this customer that user '{access.UserId}' may not read, and segment memberships that would tell what they may not see",
            },
            segments = shownSegments,
            // Ids merged into this customer: the caller may read this customer (checked above), which is what the API asks
            // before it redirects a merged-away id (308), so these ids tell the caller nothing the API would not.
            mergedFrom = mergedIn.Select(r => new { id = r.Id, r.MergedAt, r.MergedBy }),
            erasure,
            audit = audit.OrderBy(a => a.Sequence),
        };
        return System.Text.Json.JsonSerializer.Serialize(document, Json);
    }

    /// <summary>
    /// The records <paramref name="access"/> may read (all for the machine operator), their hidden fields removed, and how
    /// many were left out; the audit history of each one kept is added to <paramref name="audit"/>.
    /// </summary>
    private static async Task<(List<object> Items, int LeftOut)> VisibleAsync<T>(ICrmStore store, AccessContext? access, string entity,
        IReadOnlyList<T> records, Func<T, string?> owner, List<AuditEntry> audit, CancellationToken cancellationToken)
        where T : IEntity
    {
        var mask = access?.Fields(entity);
        var items = new List<object>();
        foreach (var record in records)
        {
            if (access is not null && !access.Check(Privilege.Read, new RecordRef(entity, record.Id, owner(record))).Allowed)
            {
                continue;
            }

            items.Add(mask is not { Hidden.Count: > 0 } ? record : mask.Apply(System.Text.Json.JsonSerializer.SerializeToNode(record, Json)!.AsObject()));
            audit.AddRange(Masked(await store.Audit.ForEntityAsync(entity, record.Id, cancellationToken), mask));
        }

        return (items, records.Count - items.Count);
    }

    /// <summary>Audit entries without the changes of fields hidden from the user.</summary>
    private static List<AuditEntry> Masked(IEnumerable<AuditEntry> entries, FieldMask? mask) =>
        entries.Select(a => mask is not { Hidden.Count: > 0 } ? a
            : a with { Changes = a.Changes.Where(c => !mask.Hidden.Contains(c.Field.Split('.', '[')[0])).ToList() }).ToList();

    public async Task ExportFileAsync(string customerId, string path, CancellationToken cancellationToken = default, AccessContext? access = null)
    {
        var json = await ExportJsonAsync(customerId, cancellationToken, access);
        var partial = path + ".partial";
        await File.WriteAllTextAsync(partial, json, new System.Text.UTF8Encoding(false), cancellationToken);
        File.Move(partial, path, overwrite: true);
    }

    /// <summary>
    /// The memberships a user may see: judged by the rules engine as the API judges them (<see cref="SegmentView"/>: the
    /// segment's current script must read nothing hidden from the user, and its order/activity figures of this customer must
    /// count only records the user may read). The machine operator sees every stored membership; without a rules engine in
    /// the host a user sees none (nothing can tell what they would reveal).
    /// </summary>
    private async Task<List<Membership>> VisibleSegmentsAsync(List<Membership> stored, string customerId, AccessContext? access, CancellationToken ct)
    {
        if (access is null)
        {
            return stored;
        }

        var shown = new List<Membership>();
        if (_segments() is not { } service)
        {
            return shown;
        }

        var view = service.ViewFor(SegmentReaders.For(access));
        foreach (var membership in stored)
        {
            if (await view.SeesMembershipAsync(membership.Segment, customerId, ct))
            {
                shown.Add(membership);
            }
        }

        return shown;
    }

    /// <summary>A stored segment membership as the export writes it.</summary>
    private sealed record Membership(string Segment, string? ScriptHash, string? DecidedAt);

    /// <summary>Segment memberships the rules engine stored for the customer (read-only look at its collection).</summary>
    private List<Membership> Segments(string customerId)
    {
        var result = new List<Membership>();
        foreach (var name in new[] { CoreEntities.CollectionNameFor("rules", "segment_members"), CoreEntities.LegacyCollectionNameFor("rules_segment_members") })
        {
            if (!_database.Database.CollectionExists(name))
            {
                continue;
            }

            foreach (var doc in _database.Database.GetCollection(name).Find(Query.EQ("CustomerId", customerId)))
            {
                result.Add(new Membership(doc["Segment"].AsString, doc["ScriptHash"].IsString ? doc["ScriptHash"].AsString : null,
                    doc["DecidedAt"].IsString ? doc["DecidedAt"].AsString : null));
            }

            break;
        }

        return result;
    }
}
