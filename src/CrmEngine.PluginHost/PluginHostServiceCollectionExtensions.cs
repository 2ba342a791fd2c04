using CrmEngine.Core.Pipeline;
using CrmEngine.Core.Storage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace CrmEngine.PluginHost;

public static class PluginHostServiceCollectionExtensions
{
    /// <summary>
    /// Adds the plugin host: options from section <c>PluginHost</c> (validated at start), the
    /// <see cref="PluginManager"/>, the fault breaker as the pipeline's <see cref="IHandlerFaultObserver"/>
    /// and <see cref="PluginHostService"/>. Call it after <c>AddCrmCore</c> so plugins start after the store
    /// and stop before it. Needs <c>IStoreProvider</c>, <c>IInstalledPlugins</c> and <c>IWriteHandlerRegistry</c> from the core.
    /// </summary>
    public static IServiceCollection AddCrmPluginHost(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        if (!services.Any(d => d.ServiceType == typeof(IStoreProvider)))
        {
            // Hosted services start in registration order: plugins must start after the store and stop before it.
            throw new InvalidOperationException("Call AddCrmCore (or register the core seams) before AddCrmPluginHost.");
        }

        services.AddOptions<PluginHostOptions>()
            .Bind(configuration.GetSection(PluginHostOptions.Section))
            .ValidateDataAnnotations()
            .ValidateOnStart();
        services.AddLogging();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<PluginFaultBreaker>();
        // Registered last so that it is the observer the pipeline resolves.
        services.AddSingleton<IHandlerFaultObserver>(sp => sp.GetRequiredService<PluginFaultBreaker>());
        services.TryAddSingleton(sp => ActivatorUtilities.CreateInstance<PluginManager>(sp, configuration));
        services.AddSingleton<CrmEngine.Security.IEntityDeclarationSource>(sp => sp.GetRequiredService<PluginManager>()); // plugin entities for the access model
        services.AddHostedService<PluginHostService>();
        return services;
    }
}
