using Microsoft.AspNetCore.Routing;

namespace CrmEngine.Api;

/// <summary>
/// A concern outside this project (webhooks, data exchange, mail) adds its endpoints by registering a module in DI
/// (<c>services.AddSingleton&lt;IApiEndpointModule, MyEndpoints&gt;()</c>); the API maps every module at start.
/// </summary>
public interface IApiEndpointModule
{
    /// <summary>
    /// Maps the module's endpoints. <paramref name="api"/> is rooted at <c>/api</c> and already behind API-key
    /// authentication; each endpoint still names its policy from <see cref="ApiPolicies"/>. <paramref name="root"/> is the
    /// application root, for the few public endpoints (for example the one-click unsubscribe link).
    /// </summary>
    void Map(IEndpointRouteBuilder api, IEndpointRouteBuilder root);
}
