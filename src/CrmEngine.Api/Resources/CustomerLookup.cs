using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;
using CrmEngine.Security;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace CrmEngine.Api.Resources;

/// <summary>Finding the customer a request names, following merge redirects when the data exchange registered them.</summary>
internal static class CustomerLookup
{
    /// <summary>
    /// The customer, or the answer for a missing one (404, or 308 to the kept customer after a merge). A customer the
    /// caller may not read is answered as missing (404, no redirect): the sub-resources of a customer (contacts,
    /// timeline, orders, consents, segments) tell nothing about a customer one cannot see.
    /// </summary>
    public static async Task<(Customer? Customer, IResult? Problem)> LoadAsync(HttpContext context, ICrmStore store, string id, bool redirect = true)
    {
        var customer = await store.Customers.GetAsync(id, context.RequestAborted);
        if (customer is null)
        {
            return (null, await MissingAsync(context, id, redirect));
        }

        return await RecordAccess.UnreadableAsync(context, EntityNames.Customer, customer) is { } unreadable ? (null, unreadable) : (customer, null);
    }

    /// <summary>
    /// 404, or — when <see cref="ICustomerRedirects"/> is registered and the id was merged away — 308 to the
    /// same URL with the kept customer's id (method and body preserved; an If-Match for the old record then
    /// fails with 412, so nothing is applied blindly). With <paramref name="redirect"/> false (deletes) the 404
    /// names the kept customer in <c>mergedInto</c> instead.
    /// </summary>
    public static async Task<IResult> MissingAsync(HttpContext context, string id, bool redirect)
    {
        var redirects = context.RequestServices.GetService<ICustomerRedirects>();
        var kept = redirects is null ? null : await redirects.ResolveAsync(id, context.RequestAborted);
        if (string.IsNullOrEmpty(kept) || kept == id || !await MayReadAsync(context, kept))
        {
            // Also when the caller may not read the kept customer: the redirect would name an id it cannot see.
            return ResourceProblems.NotFound("customer", id);
        }

        if (!redirect)
        {
            return ResourceProblems.NotFound("customer", id, new Dictionary<string, object?> { ["mergedInto"] = kept });
        }

        return Results.Redirect(Retarget(context.Request, id, kept), permanent: true, preserveMethod: true);
    }

    /// <summary>May the caller read customer <paramref name="id"/>? (A kept customer that is gone too: nothing to hide.)</summary>
    private static async Task<bool> MayReadAsync(HttpContext context, string id)
    {
        var access = await context.CrmAccessAsync();
        if (access.Filter(EntityNames.Customer).All)
        {
            return true;
        }

        var customer = await context.CrmStore().Customers.GetAsync(id, context.RequestAborted);
        return customer is null || access.Check(Privilege.Read, new RecordRef(EntityNames.Customer, customer.Id, customer.Owner)).Allowed;
    }

    /// <summary>The request URL with the customer id segment after <c>/customers/</c> replaced.</summary>
    internal static string Retarget(HttpRequest request, string id, string kept)
    {
        var segments = (request.Path.Value ?? "").Split('/');
        for (var i = 1; i < segments.Length; i++)
        {
            if (segments[i - 1] == "customers" && segments[i] == id)
            {
                segments[i] = kept;
                break;
            }
        }

        var path = string.Join('/', segments.Select(Uri.EscapeDataString));
        return request.PathBase.ToUriComponent() + path + request.QueryString.ToUriComponent();
    }
}
