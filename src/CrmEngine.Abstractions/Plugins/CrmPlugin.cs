using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Pipeline;
using CrmEngine.Abstractions.Store;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CrmEngine.Abstractions.Plugins;

/// <summary>
/// The entry point of a plugin: exactly one non-abstract subclass per entry assembly.
/// Every call from the host is guarded by a timeout; a plugin that keeps failing is marked Malfunctioned.
/// </summary>
public abstract class CrmPlugin
{
    /// <summary>Register services, write handlers, workers and options. Runs once, before start.</summary>
    public virtual void ConfigureServices(IPluginBuilder builder) { }

    /// <summary>Runs once, the first time this plugin id is started against a store.</summary>
    public virtual Task InstallAsync(IPluginContext context, CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Runs when the installed version differs from the manifest version, before start.</summary>
    public virtual Task MigrateAsync(IPluginContext context, string fromVersion, CancellationToken cancellationToken) => Task.CompletedTask;

    public virtual Task StartAsync(IPluginContext context, CancellationToken cancellationToken) => Task.CompletedTask;

    public virtual Task StopAsync(IPluginContext context, CancellationToken cancellationToken) => Task.CompletedTask;
}

/// <summary>What a plugin configures at load time.</summary>
public interface IPluginBuilder
{
    string PluginId { get; }
    string Version { get; }

    /// <summary>The configuration section <c>Plugins:{id}</c>.</summary>
    IConfiguration Configuration { get; }

    /// <summary>The plugin's own service collection; the host adds the store, logging and time.</summary>
    IServiceCollection Services { get; }

    /// <summary>Binds <typeparamref name="TOptions"/> from <c>Plugins:{id}</c> (or a sub-section) and validates its data annotations at start.</summary>
    IPluginBuilder BindOptions<TOptions>(string? subSection = null) where TOptions : class;

    /// <summary>Subscribes a handler to writes of one entity at one stage; lower order runs first.</summary>
    /// <param name="stage">Pipeline stage.</param>
    /// <param name="entityName">Entity name; defaults to the core entity of <typeparamref name="TEntity"/>.
    /// For a plugin's own collection pass the stored name <c>{pluginId}_{name}</c>.</param>
    /// <param name="order">Order among handlers of the same stage.</param>
    IPluginBuilder AddWriteHandler<TEntity, THandler>(PipelineStage stage, string? entityName = null, int order = 0)
        where TEntity : class, IEntity
        where THandler : class, IWriteHandler<TEntity>;

    /// <summary>Background work that runs while the plugin is active; restarted with backoff after a failure.</summary>
    IPluginBuilder AddWorker<TWorker>() where TWorker : class, IPluginWorker;

    /// <summary>
    /// Declares one of the plugin's entities to the access model (SDK 1.1): roles grant privileges on it as on a core
    /// entity, a record's owner is read from <paramref name="ownerField"/>, and <paramref name="protectedFields"/> are
    /// hidden from callers without a field privilege on them. A declaration stays in force while the engine runs, even
    /// if the plugin stops, so sensitive fields never come out unmasked.
    /// </summary>
    /// <param name="entityName">The stored entity name, <c>{pluginId}_{collection}</c> (only the plugin's own entities).</param>
    /// <param name="ownerField">JSON name of the field holding the owner (user id or <c>team:&lt;id&gt;</c>); null: records have no owner.</param>
    /// <param name="protectedFields">JSON names of sensitive fields, for example <c>["iban", "creditLine"]</c>.</param>
    IPluginBuilder DeclareEntity(string entityName, string? ownerField = "owner", IReadOnlyList<string>? protectedFields = null);
}

/// <summary>What a plugin sees at install, migrate, start and stop.</summary>
public interface IPluginContext
{
    string PluginId { get; }
    string Version { get; }
    IServiceProvider Services { get; }
    ICrmStore Store { get; }
    IConfiguration Configuration { get; }
    ILogger Logger { get; }
}

/// <summary>Long-running background work owned by a plugin.</summary>
public interface IPluginWorker
{
    /// <summary>Runs until <paramref name="stoppingToken"/> is cancelled. Throwing counts as a plugin failure.</summary>
    Task RunAsync(CancellationToken stoppingToken);
}

/// <summary>State of a plugin as the host reports it.</summary>
public enum PluginState
{
    /// <summary>Loaded and started.</summary>
    Active,
    /// <summary>Turned off in configuration, or not started because a dependency is not active.</summary>
    Disabled,
    /// <summary>Threw or hung too often; stopped, the engine goes on without it.</summary>
    Malfunctioned,
    /// <summary>Refused at load: SDK range, dependency, cycle or manifest problem.</summary>
    NotSupported,
}
