using System.Collections.Concurrent;
using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Pipeline;
using CrmEngine.Abstractions.Store;
using CrmEngine.Core.Pipeline;
using CrmEngine.Core.Storage;

namespace CrmEngine.PluginHost.Tests;

/// <summary>In-memory stand-ins for the core seams, for tests that do not need LiteDB.</summary>
internal sealed class InMemorySet<T>(string entityName, Func<T, string, bool>? customerIdMatch = null) : IEntitySet<T>
    where T : class, IEntity
{
    private readonly ConcurrentDictionary<string, T> _items = new();
    private int _next;

    public string EntityName { get; } = entityName;
    public IReadOnlyCollection<string> IndexedFields { get; } = [IndexedField.CustomerId];
    public IReadOnlyList<T> All => _items.Values.OrderBy(v => v.Id, StringComparer.Ordinal).ToList();

    public Task<T> CreateAsync(T entity, CancellationToken cancellationToken = default)
    {
        if (string.IsNullOrEmpty(entity.Id))
        {
            entity.Id = $"{EntityName}-{Interlocked.Increment(ref _next):D4}";
        }

        entity.Version = 1;
        _items[entity.Id] = entity;
        return Task.FromResult(entity);
    }

    public Task<T> UpdateAsync(T entity, CancellationToken cancellationToken = default)
    {
        entity.Version++;
        _items[entity.Id] = entity;
        return Task.FromResult(entity);
    }

    public Task DeleteAsync(string id, long? expectedVersion = null, CancellationToken cancellationToken = default)
    {
        _items.TryRemove(id, out _);
        return Task.CompletedTask;
    }

    public Task<T?> GetAsync(string id, CancellationToken cancellationToken = default) =>
        Task.FromResult(_items.GetValueOrDefault(id));

    public Task<IReadOnlyList<T>> FindAsync(string field, string value, int limit = 100, string? afterId = null,
        CancellationToken cancellationToken = default)
    {
        if (field != IndexedField.CustomerId || customerIdMatch is null)
        {
            throw new ArgumentException($"{field} is not indexed", nameof(field));
        }

        return Task.FromResult<IReadOnlyList<T>>(All.Where(v => customerIdMatch(v, value)).Take(limit).ToList());
    }

    public Task<IReadOnlyList<T>> ListAsync(int limit = 100, string? afterId = null, CancellationToken cancellationToken = default) =>
        Task.FromResult<IReadOnlyList<T>>(All.Take(limit).ToList());

    public Task<long> CountAsync(CancellationToken cancellationToken = default) => Task.FromResult((long)_items.Count);
}

internal sealed class InMemoryStore : ICrmStore
{
    public IEntitySet<Customer> Customers { get; } = new InMemorySet<Customer>(EntityNames.Customer);
    public InMemorySet<Activity> ActivitySet { get; } = new(EntityNames.Activity, (a, id) => a.CustomerId == id);
    public IEntitySet<Activity> Activities => ActivitySet;
    public IEntitySet<Order> Orders { get; } = new InMemorySet<Order>(EntityNames.Order);
    public IEntitySet<Product> Products { get; } = new InMemorySet<Product>(EntityNames.Product);
    public IEntitySet<ConsentEntry> Consents { get; } = new InMemorySet<ConsentEntry>(EntityNames.Consent);
    public IEntitySet<T> Collection<T>(string name) where T : class, IEntity, new() => new InMemorySet<T>(name);
    public IChangeFeed Changes => throw new NotSupportedException("not in the fake store");
    public IAuditLog Audit => throw new NotSupportedException("not in the fake store");
}

internal sealed class FakeStoreProvider : IStoreProvider
{
    public InMemoryStore Store { get; } = new();
    public ConcurrentQueue<(string Actor, string? Owner)> Requests { get; } = new();

    public ICrmStore ForActor(string actor, string? collectionOwner = null)
    {
        Requests.Enqueue((actor, collectionOwner));
        return Store;
    }
}

internal sealed class FakeInstalledPlugins : IInstalledPlugins
{
    public ConcurrentDictionary<string, string> Versions { get; } = new(StringComparer.OrdinalIgnoreCase);
    public string? GetInstalledVersion(string pluginId) => Versions.GetValueOrDefault(pluginId);
    public void SetInstalledVersion(string pluginId, string version) => Versions[pluginId] = version;
}

/// <summary>Keeps registrations and invokes them the way the pipeline does, reporting outcomes to the observer.</summary>
internal sealed class FakeHandlerRegistry : IWriteHandlerRegistry
{
    private readonly List<HandlerRegistration> _registrations = [];

    public IReadOnlyList<HandlerRegistration> Registrations
    {
        get
        {
            lock (_registrations)
            {
                return _registrations.ToList();
            }
        }
    }

    /// <summary>Called (on the registering thread) for each registration, before it is recorded.</summary>
    public Action<HandlerRegistration>? Registering { get; set; }

    public IDisposable Register(HandlerRegistration registration)
    {
        Registering?.Invoke(registration);
        lock (_registrations)
        {
            _registrations.Add(registration);
        }

        return new Unregister(() =>
        {
            lock (_registrations)
            {
                _registrations.Remove(registration);
            }
        });
    }

    /// <summary>Delivers a create of <paramref name="after"/> to every matching handler; returns the number of failures.</summary>
    /// <summary>Deliveries a handler answered with <see cref="HandlerUnavailableException"/> (owner stopping).</summary>
    public int KeptPending { get; private set; }

    public async Task<int> DeliverCreateAsync<T>(string entity, PipelineStage stage, T after, IHandlerFaultObserver observer,
        string actor = "user:test") where T : class, IEntity
    {
        var failures = 0;
        foreach (var r in Registrations.Where(r => r.EntityName == entity && r.Stage == stage).OrderBy(r => r.Order))
        {
            var e = new WriteEvent<T>(entity, after.Id, ChangeOperation.Create, null, after, stage, actor, [], 1);
            try
            {
                await r.Invoke(e, CancellationToken.None);
                observer.OnHandlerSucceeded(r.OwnerId, r.HandlerName);
            }
            catch (HandlerUnavailableException)
            {
                // As the real dispatcher does: the owner is not taking calls; kept pending, neither a try nor a fault.
                KeptPending++;
            }
            catch (Exception ex)
            {
                failures++;
                observer.OnHandlerFailed(r.OwnerId, r.HandlerName, ex);
            }
        }

        return failures;
    }

    private sealed class Unregister(Action action) : IDisposable
    {
        public void Dispose() => action();
    }
}
