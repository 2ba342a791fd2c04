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
    /// says so), else the same 422 as for a customer that does not exist — attaching a record to a customer one cannot
    /// see must not confirm that it exists.
    /// </summary>
    public static async Task<IResult?> UnseenCustomerAsync(HttpContext context, ICrmStore store, string entity, object record)
    {
        if (CustomerOf(record) is not { Length: > 0 } customerId ||
            await store.Customers.GetAsync(customerId, context.RequestAborted) is not { } customer ||
            await UnreadableAsync(context, EntityNames.Customer, customer) is null)
        {
            return null;
        }

        return ResourceProblems.Invalid(entity, "customerId", $"customer '{customerId}' does not exist");
    }

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
