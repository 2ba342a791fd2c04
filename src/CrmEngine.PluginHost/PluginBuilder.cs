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

    /// <summary>Entities the plugin declared to the access model (<see cref="DeclareEntity"/>).</summary>
    public List<EntityDeclaration> Entities { get; } = [];

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

    public IPluginBuilder DeclareEntity(string entityName, string? ownerField = "owner", IReadOnlyList<string>? protectedFields = null)
    {
        // Only the plugin's own entities: a plugin must not re-declare (and so re-protect or unprotect) another's or a core one.
        var prefix = PluginId + "_";
        if (string.IsNullOrWhiteSpace(entityName) || !entityName.StartsWith(prefix, StringComparison.Ordinal) || entityName.Length == prefix.Length)
        {
            throw new ArgumentException(
                $"DeclareEntity('{entityName}'): plugin '{PluginId}' can declare only its own entities, named {prefix}<collection>", nameof(entityName));
        }

        if (Entities.Any(e => e.Entity == entityName))
        {
            throw new ArgumentException($"DeclareEntity('{entityName}'): declared twice", nameof(entityName));
        }

        var fields = (protectedFields ?? []).Select(f => f?.Trim() ?? "").ToList();
        if (fields.FirstOrDefault(f => f.Length == 0 || f.Contains('.', StringComparison.Ordinal)) is { } bad)
        {
            throw new ArgumentException($"DeclareEntity('{entityName}'): protected field '{bad}' is not a top-level JSON field name", nameof(protectedFields));
        }

        Entities.Add(new EntityDeclaration(PluginId, entityName, string.IsNullOrWhiteSpace(ownerField) ? null : ownerField.Trim(),
            fields.Distinct(StringComparer.OrdinalIgnoreCase).ToList()));
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
