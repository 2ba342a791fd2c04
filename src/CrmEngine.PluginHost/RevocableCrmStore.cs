using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;

namespace CrmEngine.PluginHost;

/// <summary>
/// The store a plugin is handed (in its services and its context). Once the plugin is stopped or marked
/// Malfunctioned the host revokes it: code the plugin left running (an abandoned worker, a hung call that
/// timed out, a captured reference) can no longer read or write as <c>plugin:&lt;id&gt;</c>; every call then
/// throws <see cref="PluginStoreRevokedException"/> naming the plugin and why.
/// </summary>
internal sealed class RevocableCrmStore(ICrmStore inner, string pluginId) : ICrmStore
{
    private string? _revokedBecause;

    public string PluginId { get; } = pluginId;

    public bool IsRevoked => Volatile.Read(ref _revokedBecause) is not null;

    /// <summary>Revokes the store for good; the first reason is kept.</summary>
    public void Revoke(string reason) => Interlocked.CompareExchange(ref _revokedBecause, reason, null);

    internal void ThrowIfRevoked()
    {
        if (Volatile.Read(ref _revokedBecause) is { } reason)
        {
            throw new PluginStoreRevokedException(PluginId, reason);
        }
    }

    public IEntitySet<Customer> Customers => Guard(inner.Customers);
    public IEntitySet<Activity> Activities => Guard(inner.Activities);
    public IEntitySet<Order> Orders => Guard(inner.Orders);
    public IEntitySet<Product> Products => Guard(inner.Products);
    public IEntitySet<ConsentEntry> Consents => Guard(inner.Consents);

    public IEntitySet<T> Collection<T>(string name) where T : class, IEntity, new()
    {
        ThrowIfRevoked();
        return new Set<T>(this, inner.Collection<T>(name));
    }

    public IChangeFeed Changes
    {
        get
        {
            ThrowIfRevoked();
            return new Feed(this, inner.Changes);
        }
    }

    public IAuditLog Audit
    {
        get
        {
            ThrowIfRevoked();
            return new AuditLog(this, inner.Audit);
        }
    }

    private Set<T> Guard<T>(IEntitySet<T> set) where T : class, IEntity
    {
        ThrowIfRevoked();
        return new Set<T>(this, set);
    }

    /// <summary>Checks on every call, so a set obtained while the plugin was active is revoked too.</summary>
    private sealed class Set<T>(RevocableCrmStore owner, IEntitySet<T> inner) : IEntitySet<T> where T : class, IEntity
    {
        public string EntityName => inner.EntityName;
        public IReadOnlyCollection<string> IndexedFields => inner.IndexedFields;

        public Task<T> CreateAsync(T entity, CancellationToken cancellationToken = default)
        {
            owner.ThrowIfRevoked();
            return inner.CreateAsync(entity, cancellationToken);
        }

        public Task<T> UpdateAsync(T entity, CancellationToken cancellationToken = default)
        {
            owner.ThrowIfRevoked();
            return inner.UpdateAsync(entity, cancellationToken);
        }

        public Task DeleteAsync(string id, long? expectedVersion = null, CancellationToken cancellationToken = default)
        {
            owner.ThrowIfRevoked();
            return inner.DeleteAsync(id, expectedVersion, cancellationToken);
        }

        public Task<T?> GetAsync(string id, CancellationToken cancellationToken = default)
        {
            owner.ThrowIfRevoked();
            return inner.GetAsync(id, cancellationToken);
        }

        public Task<IReadOnlyList<T>> FindAsync(string field, string value, int limit = 100, string? afterId = null,
            CancellationToken cancellationToken = default)
        {
            owner.ThrowIfRevoked();
            return inner.FindAsync(field, value, limit, afterId, cancellationToken);
        }

        public Task<IReadOnlyList<T>> ListAsync(int limit = 100, string? afterId = null, CancellationToken cancellationToken = default)
        {
            owner.ThrowIfRevoked();
            return inner.ListAsync(limit, afterId, cancellationToken);
        }

        public Task<long> CountAsync(CancellationToken cancellationToken = default)
        {
            owner.ThrowIfRevoked();
            return inner.CountAsync(cancellationToken);
        }
    }

    private sealed class Feed(RevocableCrmStore owner, IChangeFeed inner) : IChangeFeed
    {
        public Task<IReadOnlyList<ChangeRecord>> ReadAsync(long afterSequence, int limit = 1000, CancellationToken cancellationToken = default)
        {
            owner.ThrowIfRevoked();
            return inner.ReadAsync(afterSequence, limit, cancellationToken);
        }

        public Task<long> LastSequenceAsync(CancellationToken cancellationToken = default)
        {
            owner.ThrowIfRevoked();
            return inner.LastSequenceAsync(cancellationToken);
        }
    }

    private sealed class AuditLog(RevocableCrmStore owner, IAuditLog inner) : IAuditLog
    {
        public Task<IReadOnlyList<AuditEntry>> ForEntityAsync(string entity, string entityId, CancellationToken cancellationToken = default)
        {
            owner.ThrowIfRevoked();
            return inner.ForEntityAsync(entity, entityId, cancellationToken);
        }
    }
}

/// <summary>A plugin used its store after the host stopped it or marked it Malfunctioned.</summary>
public sealed class PluginStoreRevokedException : StoreException
{
    public PluginStoreRevokedException(string pluginId, string reason)
        : base($"the store of plugin '{pluginId}' was revoked ({reason}): a stopped or Malfunctioned plugin can no longer read or write")
    {
        PluginId = pluginId;
    }

    public PluginStoreRevokedException() : this("?", "revoked") { }

    public PluginStoreRevokedException(string message) : base(message) => PluginId = "?";

    public PluginStoreRevokedException(string message, Exception inner) : base(message, inner) => PluginId = "?";

    public string PluginId { get; }
}
