using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace CrmEngine.Api.Resources;

public static class ResourceServiceCollectionExtensions
{
    /// <summary>
    /// The resource endpoints of the API: customers (with contacts, orders, timeline, consents and
    /// segments of one customer), activities, orders, products and segments. Registers them as
    /// <see cref="IApiEndpointModule"/>s; calling it twice registers them once.
    /// </summary>
    public static IServiceCollection AddCrmApiResources(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IApiEndpointModule, CustomerEndpoints>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IApiEndpointModule, ContactEndpoints>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IApiEndpointModule, ActivityEndpoints>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IApiEndpointModule, OrderEndpoints>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IApiEndpointModule, ConsentEndpoints>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IApiEndpointModule, SegmentEndpoints>());
        return services;
    }
}
