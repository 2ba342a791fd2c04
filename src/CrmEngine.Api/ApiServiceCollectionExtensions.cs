using CrmEngine.Api.Endpoints;
using CrmEngine.Api.Hosting;
using CrmEngine.Api.Keys;
using CrmEngine.Core.Storage;
using CrmEngine.PluginHost;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace CrmEngine.Api;

public static class ApiServiceCollectionExtensions
{
    /// <summary>
    /// The HTTP API: options <c>Api</c> (validated at start), API keys (<see cref="ApiKeyAdministration"/>), the health
    /// contributors for store, plugins and scheduler, and the hosted API server. Call it after <c>AddCrmCore</c>,
    /// <c>AddCrmPluginHost</c>, <c>AddCrmScheduling</c> and <c>AddCrmRules</c>: hosted services start in registration order,
    /// so the API starts once the plugins (and their endpoints) are up, and stops before them. Endpoint modules and
    /// health contributors of other concerns may be registered before or after this call.
    /// </summary>
    public static IServiceCollection AddCrmApi(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        if (!services.Any(d => d.ServiceType == typeof(IStoreProvider)))
        {
            throw new InvalidOperationException("Call AddCrmCore before AddCrmApi: the API serves the engine's store.");
        }

        // Every request is answered as the caller's user (ApiCaller.CrmAccessAsync); the host also adds it, idempotent.
        CrmEngine.Security.SecurityServiceCollectionExtensions.AddCrmSecurity(services);
        services.AddOptions<ApiOptions>().Bind(configuration.GetSection(ApiOptions.Section)).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ApiOptions>, ApiOptionsValidator>());
        services.TryAddSingleton(sp => new ApiKeyStore(sp.GetRequiredService<CrmDatabase>()));
        services.TryAddSingleton(sp => new ApiKeyAdministration(sp.GetRequiredService<ApiKeyStore>()));
        Security.ApiAuthentication.AddOptions(services); // access model (keys bound to users), Api:Jwt
        services.TryAddSingleton(sp => ActivatorUtilities.CreateInstance<PluginHttpEndpoints>(sp));
        services.AddSingleton<IHealthContributor, StoreHealth>();
        services.AddSingleton<IHealthContributor>(sp => new PluginsHealth(sp));
        services.AddSingleton<IHealthContributor>(sp => new SchedulerHealthContributor(sp));
        Resources.ResourceServiceCollectionExtensions.AddCrmApiResources(services); // customers, contacts, activities, orders, products, consents, segments
        services.TryAddSingleton(new EngineServiceCollection(services));
        services.TryAddSingleton(sp => ActivatorUtilities.CreateInstance<ApiServer>(sp));
        services.AddHostedService(sp => sp.GetRequiredService<ApiServer>());
        return services;
    }
}
