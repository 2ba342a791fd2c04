using System.Collections.Concurrent;
using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;
using CrmEngine.Core.Pipeline;

namespace CrmEngine.Core.Storage;

/// <summary>The store facade handed to a plugin, a rule or the host: acts as one actor.</summary>
public sealed class CrmStore : ICrmStore
{
    private readonly WritePipeline _pipeline;
    private readonly string? _collectionOwner;
    private readonly ConcurrentDictionary<string, EntityDescriptor> _pluginCollections = new(StringComparer.Ordinal);

    internal CrmStore(WritePipeline pipeline, string actor, string? collectionOwner, IChangeFeed changes, IAuditLog audit)
    {
        _pipeline = pipeline;
        _collectionOwner = collectionOwner;
        Actor = actor;
        Customers = new EntitySet<Customer>(pipeline, CoreEntities.Customer, actor);
        Activities = new EntitySet<Activity>(pipeline, CoreEntities.Activity, actor);
        Orders = new EntitySet<Order>(pipeline, CoreEntities.Order, actor);
        Products = new EntitySet<Product>(pipeline, CoreEntities.Product, actor);
        Consents = new EntitySet<ConsentEntry>(pipeline, CoreEntities.Consent, actor);
        Changes = changes;
        Audit = audit;
    }

    /// <summary>Who this facade writes as (recorded in the change feed and the audit log).</summary>
    public string Actor { get; }

    public IEntitySet<Customer> Customers { get; }
    public IEntitySet<Activity> Activities { get; }
    public IEntitySet<Order> Orders { get; }
    public IEntitySet<Product> Products { get; }
    public IEntitySet<ConsentEntry> Consents { get; }
    public IChangeFeed Changes { get; }
    public IAuditLog Audit { get; }

    public IEntitySet<T> Collection<T>(string name) where T : class, IEntity, new()
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        if (_collectionOwner is null)
        {
            throw new InvalidOperationException(
                $"'{Actor}' owns no collections: only a store handed to a plugin (with a collection owner) can use Collection<T>(\"{name}\").");
        }

        if (!CoreEntities.IsValidName(name))
        {
            throw new ArgumentException($"Collection name '{name}' is not allowed: use 1-60 letters, digits, '_', '-' or '.'.", nameof(name));
        }

        var entityName = PluginEntityName(_collectionOwner, name);
        var descriptor = _pluginCollections.GetOrAdd(entityName,
            n => new EntityDescriptor(n, _pipeline.Database.ClaimPluginCollection(_collectionOwner, name), typeof(T), [], null));
        return new EntitySet<T>(_pipeline, descriptor, Actor);
    }

    /// <summary>The entity name (events, change feed, audit, handler registration) of a plugin collection.</summary>
    public static string PluginEntityName(string pluginId, string name) => pluginId + "_" + name;
}

/// <summary>Hands out <see cref="CrmStore"/> facades acting as a named actor.</summary>
public sealed class StoreProvider : IStoreProvider
{
    private readonly WritePipeline _pipeline;
    private readonly ChangeFeed _changes;
    private readonly AuditLog _audit;

    public StoreProvider(WritePipeline pipeline)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        _pipeline = pipeline;
        _changes = new ChangeFeed(pipeline.Database);
        _audit = new AuditLog(pipeline.Database);
    }

    public ICrmStore ForActor(string actor, string? collectionOwner = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(actor);
        if (collectionOwner is not null && !CoreEntities.IsValidName(collectionOwner))
        {
            throw new ArgumentException($"'{collectionOwner}' cannot own collections: use letters, digits, '_', '-' or '.'.", nameof(collectionOwner));
        }

        return new CrmStore(_pipeline, actor, collectionOwner, _changes, _audit);
    }
}

/// <summary>Which plugin versions were installed against this database (<c>_plugins</c>).</summary>
public sealed class InstalledPlugins : IInstalledPlugins
{
    private readonly CrmDatabase _db;

    public InstalledPlugins(CrmDatabase database) => _db = database ?? throw new ArgumentNullException(nameof(database));

    public string? GetInstalledVersion(string pluginId)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(pluginId);
        var doc = _db.Database.GetCollection(CrmDatabase.PluginsCollection).FindById(pluginId);
        return doc?["version"].AsString;
    }

    public void SetInstalledVersion(string pluginId, string version)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(pluginId);
        ArgumentException.ThrowIfNullOrWhiteSpace(version);
        var at = _db.TimeProvider.GetUtcNow().ToString("O", System.Globalization.CultureInfo.InvariantCulture);
        _db.WriteAsync(_ => _db.Database.GetCollection(CrmDatabase.PluginsCollection).Upsert(new LiteDB.BsonDocument
        {
            ["_id"] = pluginId,
            ["version"] = version,
            ["at"] = at,
        })).GetAwaiter().GetResult();
    }
}
