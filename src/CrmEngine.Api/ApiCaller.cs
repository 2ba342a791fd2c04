// For endpoint code (resources, webhooks, data exchange): inside an /api endpoint,
//   var store = httpContext.CrmStore();      // ICrmStore acting as "apikey:<name>": audit log and change feed name the caller
//   var actor = httpContext.CrmActor();      // "apikey:<name>", e.g. for PluginHttpRequest.Actor or your own records
//   var scope = httpContext.CrmScope();      // the caller's ApiScope (already checked by the endpoint's policy)
// Return errors with ApiProblems (ApiProblems.Field(...), ApiProblems.Create(...)); store exceptions thrown by your code
// (ValidationException, ConcurrencyException, EntityNotFoundException, PipelineDepthException) become problem details by themselves.
using System.Security.Claims;
using CrmEngine.Abstractions.Http;
using CrmEngine.Abstractions.Store;
using CrmEngine.Api.Security;
using CrmEngine.Core.Storage;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace CrmEngine.Api;

/// <summary>Who is calling an API endpoint, and a store that acts as them.</summary>
public static class ApiCaller
{
    /// <summary>The actor the audit log records for this request: <c>apikey:&lt;name&gt;</c>.</summary>
    public static string CrmActor(this HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var name = context.User.Identity is { IsAuthenticated: true, Name: { } n } ? n : null;
        return name is null
            ? throw new InvalidOperationException("CrmActor() needs an authenticated request: map the endpoint under /api with RequireAuthorization(ApiPolicies...).")
            : "apikey:" + name;
    }

    /// <summary>A store acting as the caller (<see cref="CrmActor"/>); every write goes through the event pipeline.</summary>
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
