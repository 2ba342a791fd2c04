using System.Text.Json;
using System.Text.Json.Serialization;
using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;
using CrmEngine.Core.Storage;
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

    internal CustomerDataExport(IStoreProvider stores, CrmDatabase database, TimeProvider? time = null)
    {
        _stores = stores;
        _database = database;
        _time = time ?? TimeProvider.System;
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
            throw new CustomerOperationException(redirect is null
                ? $"customer {customerId} does not exist"
                : $"customer {customerId} was merged into {redirect.TargetId}: export {redirect.TargetId}", notFound: redirect is null);
        }

        CustomerAccess.Require(access, customer, Privilege.Export, null);
        var hidden = access?.Fields(EntityNames.Customer);
        var activities = await store.Activities.FindAllAsync(customerId, cancellationToken);
        var orders = await store.Orders.FindAllAsync(customerId, cancellationToken);
        var consents = await store.Consents.FindAllAsync(customerId, cancellationToken);
        var audit = new List<AuditEntry>((await store.Audit.ForEntityAsync(EntityNames.Customer, customerId, cancellationToken))
            .Select(a => hidden is not { Hidden.Count: > 0 } ? a
                : a with { Changes = a.Changes.Where(c => !hidden.Hidden.Contains(c.Field.Split('.', '[')[0])).ToList() }));
        foreach (var a in activities)
        {
            audit.AddRange(await store.Audit.ForEntityAsync(EntityNames.Activity, a.Id, cancellationToken));
        }

        foreach (var o in orders)
        {
            audit.AddRange(await store.Audit.ForEntityAsync(EntityNames.Order, o.Id, cancellationToken));
        }

        foreach (var c in consents)
        {
            audit.AddRange(await store.Audit.ForEntityAsync(EntityNames.Consent, c.Id, cancellationToken));
        }

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
        var document = new
        {
            exportedAt = _time.GetUtcNow(),
            customer = hidden is null ? (object)customer : hidden.Apply(System.Text.Json.JsonSerializer.SerializeToNode(customer, Json)!.AsObject()),
            activities,
            orders,
            consents,
            segments = Segments(customerId),
            mergedFrom = mergedIn.Select(r => new { id = r.Id, r.MergedAt, r.MergedBy }),
            erasure,
            audit = audit.OrderBy(a => a.Sequence),
        };
        return System.Text.Json.JsonSerializer.Serialize(document, Json);
    }

    public async Task ExportFileAsync(string customerId, string path, CancellationToken cancellationToken = default, AccessContext? access = null)
    {
        var json = await ExportJsonAsync(customerId, cancellationToken, access);
        var partial = path + ".partial";
        await File.WriteAllTextAsync(partial, json, new System.Text.UTF8Encoding(false), cancellationToken);
        File.Move(partial, path, overwrite: true);
    }

    /// <summary>Segment memberships the rules engine stored for the customer (read-only look at its collection).</summary>
    private List<object> Segments(string customerId)
    {
        var result = new List<object>();
        foreach (var name in new[] { CoreEntities.CollectionNameFor("rules", "segment_members"), CoreEntities.LegacyCollectionNameFor("rules_segment_members") })
        {
            if (!_database.Database.CollectionExists(name))
            {
                continue;
            }

            foreach (var doc in _database.Database.GetCollection(name).Find(Query.EQ("CustomerId", customerId)))
            {
                result.Add(new
                {
                    segment = doc["Segment"].AsString,
                    scriptHash = doc["ScriptHash"].IsString ? doc["ScriptHash"].AsString : null,
                    decidedAt = doc["DecidedAt"].IsString ? doc["DecidedAt"].AsString : null,
                });
            }

            break;
        }

        return result;
    }
}
