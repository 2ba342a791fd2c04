using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Pipeline;
using CrmEngine.Abstractions.Plugins;
using CrmEngine.Abstractions.Store;
using CrmEngine.Core.Pipeline;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CrmEngine.PluginHost;

/// <summary>A write handler a plugin declared; turned into a registration when the plugin becomes active.</summary>
internal sealed record HandlerSpec(string HandlerName, string EntityName, PipelineStage Stage, int Order,
    Func<PluginRuntime, HandlerRegistration> Create);

/// <summary>The host's <see cref="IPluginBuilder"/>: collects services, options, handlers and workers.</summary>
internal sealed class PluginBuilder(string pluginId, string version, IConfiguration configuration, IServiceCollection services)
    : IPluginBuilder
{
    public string PluginId { get; } = pluginId;
    public string Version { get; } = version;
    public IConfiguration Configuration { get; } = configuration;
    public IServiceCollection Services { get; } = services;

    public List<HandlerSpec> Handlers { get; } = [];
    public List<Type> Workers { get; } = [];

    /// <summary>Each resolves one bound options type, which runs its validation.</summary>
    public List<Action<IServiceProvider>> OptionsChecks { get; } = [];

    public IPluginBuilder BindOptions<TOptions>(string? subSection = null) where TOptions : class
    {
        var section = string.IsNullOrEmpty(subSection) ? Configuration : Configuration.GetSection(subSection);
        Services.AddOptions<TOptions>().Bind(section).ValidateDataAnnotations();
        OptionsChecks.Add(sp => _ = sp.GetRequiredService<IOptions<TOptions>>().Value);
        return this;
    }

    public IPluginBuilder AddWriteHandler<TEntity, THandler>(PipelineStage stage, string? entityName = null, int order = 0)
        where TEntity : class, IEntity
        where THandler : class, IWriteHandler<TEntity>
    {
        var entity = string.IsNullOrWhiteSpace(entityName) ? CoreEntityName(typeof(TEntity)) : entityName;
        if (entity is null)
        {
            throw new ArgumentException(
                $"{typeof(TEntity).Name} is not a core entity: pass the stored collection name ({PluginId}_<name>) as entityName.",
                nameof(entityName));
        }

        Services.TryAddScoped<THandler>();
        var name = $"{PluginId}:{typeof(THandler).Name}";
        if (Handlers.Any(h => h.HandlerName == name))
        {
            name = $"{name}@{entity}.{stage}";
        }

        var handlerName = name;
        Handlers.Add(new HandlerSpec(handlerName, entity, stage, order, runtime =>
            HandlerRegistration.Create<TEntity>(PluginId, entity, stage, order, handlerName, async (writeEvent, ct) =>
            {
                // A call that races with the plugin being stopped or marked Malfunctioned: an in-transaction
                // stage goes on without this plugin; an async delivery is kept pending for when it is active again.
                var services = runtime.Services;
                if (!runtime.AcceptsCalls || services is null)
                {
                    if (stage == PipelineStage.Async)
                    {
                        throw new HandlerUnavailableException($"plugin '{PluginId}' is not taking calls (stopping or not active)");
                    }

                    return;
                }

                await using var scope = services.CreateAsyncScope();
                var handler = scope.ServiceProvider.GetRequiredService<THandler>();
                await handler.HandleAsync(writeEvent, ct);
            })));
        return this;
    }

    public IPluginBuilder AddWorker<TWorker>() where TWorker : class, IPluginWorker
    {
        Services.TryAddTransient<TWorker>();
        if (!Workers.Contains(typeof(TWorker)))
        {
            Workers.Add(typeof(TWorker));
        }

        return this;
    }

    internal static string? CoreEntityName(Type type) => type == typeof(Customer) ? EntityNames.Customer
        : type == typeof(Activity) ? EntityNames.Activity
        : type == typeof(Order) ? EntityNames.Order
        : type == typeof(Product) ? EntityNames.Product
        : type == typeof(ConsentEntry) ? EntityNames.Consent
        : null;
}

internal sealed class PluginContext(string pluginId, string version, IServiceProvider services, ICrmStore store,
    IConfiguration configuration, ILogger logger) : IPluginContext
{
    public string PluginId { get; } = pluginId;
    public string Version { get; } = version;
    public IServiceProvider Services { get; } = services;
    public ICrmStore Store { get; } = store;
    public IConfiguration Configuration { get; } = configuration;
    public ILogger Logger { get; } = logger;
}
