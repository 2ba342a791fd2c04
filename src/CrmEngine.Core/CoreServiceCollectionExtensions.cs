using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;
using CrmEngine.Core.Pipeline;
using CrmEngine.Core.Storage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CrmEngine.Core;

public static class CoreServiceCollectionExtensions
{
    /// <summary>
    /// The store and its pipeline: options <c>Store</c> and <c>Pipeline</c> (validated at start),
    /// <see cref="CrmDatabase"/>, <see cref="IStoreProvider"/>, <see cref="IWriteHandlerRegistry"/>,
    /// <see cref="IInstalledPlugins"/>, the async delivery dispatcher (hosted, also as
    /// <see cref="IAsyncDeliveries"/>) and <see cref="TimeProvider.System"/> unless one is registered.
    /// Every <see cref="IHandlerFaultObserver"/> registered is told about handler outcomes.
    /// </summary>
    public static IServiceCollection AddCrmCore(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);

        services.AddOptions<StoreOptions>().Bind(configuration.GetSection(StoreOptions.Section)).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<PipelineOptions>().Bind(configuration.GetSection(PipelineOptions.Section)).ValidateDataAnnotations().ValidateOnStart();
        services.TryAddSingleton(TimeProvider.System);

        services.TryAddSingleton(sp =>
        {
            var options = sp.GetRequiredService<IOptions<StoreOptions>>().Value;
            var contentRoot = sp.GetService<IHostEnvironment>()?.ContentRootPath;
            var resolved = new StoreOptions
            {
                DataDirectory = Path.GetDirectoryName(CrmDatabase.ResolveFilePath(options, contentRoot))!,
                FileName = options.FileName,
                DiskSyncTimeout = options.DiskSyncTimeout,
            };
            return new CrmDatabase(resolved, sp.GetRequiredService<TimeProvider>(), sp.GetService<ILogger<CrmDatabase>>());
        });
        services.TryAddSingleton<WriteHandlerRegistry>();
        services.TryAddSingleton<IWriteHandlerRegistry>(sp => sp.GetRequiredService<WriteHandlerRegistry>());
        services.TryAddSingleton(sp => new WritePipeline(
            sp.GetRequiredService<CrmDatabase>(),
            sp.GetRequiredService<WriteHandlerRegistry>(),
            sp.GetRequiredService<IOptions<PipelineOptions>>().Value,
            // Resolved on first use: an observer (the plugin host) may itself depend on the store.
            () => sp.GetServices<IHandlerFaultObserver>(),
            sp.GetService<ILogger<WritePipeline>>()));
        services.TryAddSingleton<IStoreProvider, StoreProvider>();
        services.TryAddSingleton<IInstalledPlugins>(sp => new InstalledPlugins(sp.GetRequiredService<CrmDatabase>()));
        services.TryAddSingleton<IChangeFeed>(sp => new ChangeFeed(sp.GetRequiredService<CrmDatabase>()));
        services.TryAddSingleton<IAuditLog>(sp => new AuditLog(sp.GetRequiredService<CrmDatabase>()));
        services.TryAddSingleton(sp => new AsyncDeliveryDispatcher(
            sp.GetRequiredService<WritePipeline>(), sp.GetService<ILogger<AsyncDeliveryDispatcher>>()));
        services.TryAddSingleton<IAsyncDeliveries>(sp => sp.GetRequiredService<AsyncDeliveryDispatcher>());
        services.AddHostedService(sp => sp.GetRequiredService<AsyncDeliveryDispatcher>());
        return services;
    }
}

public static class EntitySetExtensions
{
    /// <summary>
    /// Creates many records in one transaction, each through the full pipeline; all or nothing.
    /// On a set that is not the engine's own, falls back to one create per record.
    /// </summary>
    public static async Task<IReadOnlyList<T>> CreateManyAsync<T>(this IEntitySet<T> set, IEnumerable<T> entities,
        CancellationToken cancellationToken = default) where T : class, IEntity, new()
    {
        ArgumentNullException.ThrowIfNull(set);
        ArgumentNullException.ThrowIfNull(entities);
        if (set is EntitySet<T> engine)
        {
            return await engine.CreateManyAsync(entities, cancellationToken);
        }

        var result = new List<T>();
        foreach (var e in entities)
        {
            result.Add(await set.CreateAsync(e, cancellationToken));
        }

        return result;
    }
}
