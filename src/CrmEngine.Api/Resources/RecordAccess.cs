using System.Text.Json.Nodes;
using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;
using CrmEngine.Security;
using Microsoft.AspNetCore.Http;

namespace CrmEngine.Api.Resources;

/// <summary>
/// Record access for the resource endpoints, from the caller's <see cref="AccessContext"/>: a record the caller may not
/// read is answered as missing (404: guessing ids tells nothing); an operation it may read but not do is 403 naming the
/// privilege; hidden protected fields are removed from every record answered and refused as filters.
/// </summary>
internal static class RecordAccess
{
    /// <summary>The owner the access model reads from a record (null for records without one: products, consents).</summary>
    public static string? OwnerOf(object record) => record switch
    {
        Customer c => c.Owner,
        Activity a => a.Owner,
        Order o => o.Owner,
        _ => null,
    };

    /// <summary>The customer a record belongs to (activities, orders), or null.</summary>
    public static string? CustomerOf(object record) => record switch
    {
        Activity a => a.CustomerId,
        Order o => o.CustomerId,
        _ => null,
    };

    /// <summary>
    /// Null when the customer a new or changed record names may be read by the caller (or does not exist: the pipeline
    /// says so), else exactly the answer for a customer that does not exist — attaching a record to a customer one cannot
    /// see must not confirm that it exists. The answer is not built here but by the same write with a customer id that
    /// nobody has (<see cref="AsUnknownCustomerAsync"/>): every other error of the body comes out as it would for an
    /// unknown id (subject missing, bad currency, ... and the caller's own privileges), and nothing is stored.
    /// </summary>
    public static async Task<IResult?> UnseenCustomerAsync(HttpContext context, ICrmStore store, string entity, object record)
    {
        if (CustomerOf(record) is not { Length: > 0 } customerId ||
            await store.Customers.GetAsync(customerId, context.RequestAborted) is not { } customer ||
            await UnreadableAsync(context, EntityNames.Customer, customer) is null)
        {
            return null;
        }

        return await AsUnknownCustomerAsync(context, store, entity, record, customerId);
    }

    /// <summary>
    /// Runs the create (POST) or update of <paramref name="record"/> with its customer id replaced by one that cannot
    /// exist, so the pipeline refuses it at validation as it refuses an unknown customer, and answers that refusal with
    /// <paramref name="customerId"/> put back into the messages.
    /// </summary>
    private static async Task<IResult> AsUnknownCustomerAsync(HttpContext context, ICrmStore store, string entity, object record, string customerId)
    {
        var probe = "unknown-" + Guid.NewGuid().ToString("N");
        var create = HttpMethods.IsPost(context.Request.Method);
        try
        {
            IEntity? stored = record switch
            {
                Activity a => await ProbeAsync(store.Activities, Copy(a, probe, create), create, context.RequestAborted),
                Order o => await ProbeAsync(store.Orders, Copy(o, probe, create), create, context.RequestAborted),
                _ => null,
            };
            if (stored is not null)
            {
                // Cannot happen (core validation refuses a customer that does not exist); never keep such a record.
                await (record is Activity ? store.Activities.DeleteAsync(stored.Id) : store.Orders.DeleteAsync(stored.Id));
            }
        }
        catch (ValidationException v) when (v.Errors.Count > 0)
        {
            return ResourceProblems.FromStore(context, entity,
                new ValidationException(v.Entity, v.Errors.Select(e => e with { Message = e.Message.Replace(probe, customerId, StringComparison.Ordinal) }).ToList()));
        }
        catch (StoreException ex)
        {
            return ResourceProblems.FromStore(context, entity, ex);
        }

        return ResourceProblems.Invalid(entity, "customerId", $"customer '{customerId}' does not exist");
    }

    private static T Copy<T>(T record, string customerId, bool create) where T : class, IEntity
    {
        var json = ResourceJson.Instance;
        var copy = System.Text.Json.JsonSerializer.Deserialize<T>(json.ToNode(record), json.Write)!;
        switch (copy)
        {
            case Activity a:
                a.CustomerId = customerId;
                break;
            case Order o:
                o.CustomerId = customerId;
                break;
        }

        if (create)
        {
            // As the create endpoint does before it writes: the engine assigns the id.
            copy.Id = "";
            copy.Version = 0;
        }

        return copy;
    }

    private static async Task<IEntity> ProbeAsync<T>(IEntitySet<T> set, T record, bool create, CancellationToken ct) where T : class, IEntity =>
        create ? await set.CreateAsync(record, ct) : await set.UpdateAsync(record, ct);

    /// <summary>403 when a query parameter (or the value of <c>sort</c>) names a field hidden from the caller, else null.</summary>
    public static async Task<IResult?> HiddenQueryAsync(HttpContext context, string entity)
    {
        var mask = (await context.CrmAccessAsync()).Fields(entity);
        if (mask.Hidden.Count == 0)
        {
            return null;
        }

        foreach (var (key, values) in context.Request.Query)
        {
            foreach (var name in key.Equals("sort", StringComparison.OrdinalIgnoreCase) ? values.Select(v => (v ?? "").TrimStart('-', '+')) : [key])
            {
                var decision = mask.CheckQueryField(name);
                if (!decision.Allowed)
                {
                    return ApiAccess.Forbidden(context, entity, null, decision);
                }
            }
        }

        return null;
    }

    /// <summary>The owner of a record of type <typeparamref name="T"/>, or null when the type has none (for query filters).</summary>
    public static Func<T, string?> OwnerFunc<T>() where T : class => r => OwnerOf(r);

    /// <summary>Null when the caller may read <paramref name="record"/>, else the 404 to answer (the denial is logged).</summary>
    public static async Task<IResult?> UnreadableAsync(HttpContext context, string entity, IEntity record)
    {
        var access = await context.CrmAccessAsync();
        var decision = access.Check(Privilege.Read, new RecordRef(entity, record.Id, OwnerOf(record)));
        return decision.Allowed ? null : ApiAccess.NotFound(context, entity, record.Id, decision);
    }

    /// <summary>Null when the caller holds <paramref name="privilege"/> on the record (or, for a create, on a new one), else 403.</summary>
    public static async Task<IResult?> ForbiddenAsync(HttpContext context, string entity, Privilege privilege, IEntity? record, string? newOwner = null)
    {
        var access = await context.CrmAccessAsync();
        var decision = record is null
            ? access.CheckCreate(entity, newOwner)
            : access.Check(privilege, new RecordRef(entity, record.Id, OwnerOf(record)));
        return decision.Allowed ? null : ApiAccess.Forbidden(context, entity, record?.Id, decision);
    }

    /// <summary>403 when <paramref name="field"/> (a filter or sort key) is hidden from the caller, else null.</summary>
    public static async Task<IResult?> HiddenQueryFieldAsync(HttpContext context, string entity, string field)
    {
        var decision = (await context.CrmAccessAsync()).Fields(entity).CheckQueryField(field);
        return decision.Allowed ? null : ApiAccess.Forbidden(context, entity, null, decision);
    }

    /// <summary>
    /// 403 when a request body names a protected field the caller may not see (writing it, even its current value,
    /// would tell whether a guess was right), else null.
    /// </summary>
    public static IResult? HiddenInBody(HttpContext context, AccessContext access, string entity, JsonObject? body)
    {
        var mask = access.Fields(entity);
        if (body is null || mask.Hidden.Count == 0)
        {
            return null;
        }

        foreach (var (name, _) in body)
        {
            if (mask.Hidden.Contains(name))
            {
                return ApiAccess.Forbidden(context, entity, null,
                    AccessDecision.Deny($"{entity}.{name}:write", $"user '{access.UserId}' may not read or change {entity}.{name}"));
            }
        }

        return null;
    }

    /// <summary>The record as the caller may see it: itself, or its JSON without the hidden fields.</summary>
    public static object Shape<T>(FieldMask mask, T record) where T : class =>
        mask.Hidden.Count == 0 ? record : mask.Apply(ResourceJson.Instance.ToNode(record).AsObject());

    /// <summary>Copies the values of hidden fields from <paramref name="current"/> into a replacement the caller could not fill in.</summary>
    public static T KeepHidden<T>(FieldMask mask, T current, T replacement) where T : class
    {
        if (mask.Hidden.Count == 0)
        {
            return replacement;
        }

        var json = ResourceJson.Instance;
        var from = json.ToNode(current).AsObject();
        var into = json.ToNode(replacement).AsObject();
        foreach (var name in mask.Hidden)
        {
            var key = from.Select(p => p.Key).FirstOrDefault(k => string.Equals(k, name, StringComparison.OrdinalIgnoreCase));
            if (key is not null)
            {
                into[key] = from[key]?.DeepClone();
            }
        }

        return System.Text.Json.JsonSerializer.Deserialize<T>(into, json.Write)!;
    }
}
