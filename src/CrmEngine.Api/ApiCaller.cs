// For endpoint code (resources, webhooks, data exchange): inside an /api endpoint,
//   var user   = httpContext.CrmUserId();           // the user the key (or token) acts as; "sys-api" for a key without one
//   var access = await httpContext.CrmAccessAsync(); // Security AccessContext of that user, narrowed by the key's scope (one per request)
//   var store  = httpContext.CrmStore();            // ICrmStore acting as the user (a key without one: "apikey:<name>"), and
//                                                   // write enforcement refuses what their roles do not reach (403 problem)
//   var scope  = httpContext.CrmScope();            // the caller's ApiScope (already checked by the endpoint's policy)
//   if (!access.Check(Privilege.Read, new RecordRef("customer", id, c.Owner)).Allowed) return ApiAccess.NotFound(...);
//   access.Fields("customer").Apply(record)         // drop hidden fields from every answer (see ApiAccess)
// Return errors with ApiProblems (ApiProblems.Field(...), ApiProblems.Create(...)); store exceptions thrown by your code
// (ValidationException, ConcurrencyException, EntityNotFoundException, PipelineDepthException) become problem details by
// themselves; a write refused by access (ValidationException with field "access") becomes 403 naming the privilege.
using System.Security.Claims;
using CrmEngine.Abstractions.Http;
using CrmEngine.Abstractions.Store;
using CrmEngine.Api.Security;
using CrmEngine.Core.Storage;
using CrmEngine.Security;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace CrmEngine.Api;

/// <summary>Who is calling an API endpoint, and a store that acts as them.</summary>
public static class ApiCaller
{
    /// <summary>The claim carrying the user id an API key or bearer token acts as (absent: the key has no user).</summary>
    public const string UserClaim = "crm:user";

    private const string AccessItem = "crm.access";

    /// <summary>
    /// The user the caller acts as: the key's (or token's) user, or <c>sys-api</c> for a key without one. The audit log
    /// and the change feed record it for every write the request makes.
    /// </summary>
    public static string CrmUserId(this HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (context.User.Identity is not { IsAuthenticated: true })
        {
            throw new InvalidOperationException("CrmUserId() needs an authenticated request: map the endpoint under /api with RequireAuthorization(ApiPolicies...).");
        }

        return context.User.FindFirst(UserClaim)?.Value is { Length: > 0 } user ? user : SecurityAdministration.SystemUsers.Api;
    }

    /// <summary>
    /// The actor the audit log and change feed record for this request: the user id of a key (or token) with a user,
    /// else <c>apikey:&lt;name&gt;</c> (which stands for the system user <c>sys-api</c>: it keeps the key's name in the audit).
    /// </summary>
    public static string CrmActor(this HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var name = context.User.Identity is { IsAuthenticated: true, Name: { } n } ? n : null;
        if (name is null)
        {
            throw new InvalidOperationException("CrmActor() needs an authenticated request: map the endpoint under /api with RequireAuthorization(ApiPolicies...).");
        }

        return context.User.FindFirst(UserClaim)?.Value is { Length: > 0 } user ? user : "apikey:" + name;
    }

    /// <summary>
    /// What the caller may read and change: the user's roles, teams and shares, narrowed by the key's scope. Built once
    /// per request (one snapshot of the access model, so every answer of the request agrees).
    /// </summary>
    public static async ValueTask<AccessContext> CrmAccessAsync(this HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (context.Items.TryGetValue(AccessItem, out var cached) && cached is AccessContext known)
        {
            return known;
        }

        var directory = context.RequestServices.GetRequiredService<SecurityDirectory>();
        var snapshot = await directory.SnapshotAsync(context.RequestAborted);
        var access = AccessContext.ForCaller(snapshot, context.CrmUserId(), context.CrmScope());
        context.Items[AccessItem] = access;
        return access;
    }

    /// <summary>
    /// A store acting as the caller (<see cref="CrmActor"/>); every write goes through the event pipeline, where write
    /// enforcement checks it against the user's access (a refusal is a 403 problem naming the missing privilege).
    /// </summary>
    public static ICrmStore CrmStore(this HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.RequestServices.GetRequiredService<IStoreProvider>().ForActor(context.CrmActor());
    }

    /// <summary>The caller's scope, or null when the request is not authenticated.</summary>
    public static ApiScope? CrmScope(this HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return ScopeOf(context.User);
    }

    internal static ApiScope? ScopeOf(ClaimsPrincipal user) =>
        user.FindFirst(ApiKeyAuthenticationHandler.ScopeClaim)?.Value is { } s && Enum.TryParse<ApiScope>(s, true, out var scope) ? scope : null;
}
