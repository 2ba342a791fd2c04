using CrmEngine.Abstractions.Model;

namespace CrmEngine.Abstractions.Store;

/// <summary>
/// The shared customer store as a plugin sees it. Every write goes through the event pipeline.
/// The instance handed to a plugin acts as that plugin (the audit log names it).
/// </summary>
public interface ICrmStore
{
    IEntitySet<Customer> Customers { get; }
    IEntitySet<Activity> Activities { get; }
    IEntitySet<Order> Orders { get; }
    IEntitySet<Product> Products { get; }
    IEntitySet<ConsentEntry> Consents { get; }

    /// <summary>
    /// A document collection owned by the calling plugin. The stored name is
    /// <c>{pluginId}_{name}</c>; writes to it go through the pipeline under that entity name.
    /// </summary>
    IEntitySet<T> Collection<T>(string name) where T : class, IEntity, new();

    IChangeFeed Changes { get; }
    IAuditLog Audit { get; }
}

/// <summary>One collection of entities.</summary>
public interface IEntitySet<T> where T : class, IEntity
{
    /// <summary>The entity name used in events, the change feed and the audit log.</summary>
    string EntityName { get; }

    /// <summary>Creates the entity (id assigned when empty) and returns the stored image with Version 1.</summary>
    Task<T> CreateAsync(T entity, CancellationToken cancellationToken = default);

    /// <summary>
    /// Replaces the entity. <see cref="IEntity.Version"/> must equal the stored version,
    /// otherwise <see cref="ConcurrencyException"/> is thrown and nothing is written.
    /// </summary>
    Task<T> UpdateAsync(T entity, CancellationToken cancellationToken = default);

    /// <summary>Deletes by id; with <paramref name="expectedVersion"/> the delete is conditional.</summary>
    Task DeleteAsync(string id, long? expectedVersion = null, CancellationToken cancellationToken = default);

    Task<T?> GetAsync(string id, CancellationToken cancellationToken = default);

    /// <summary>
    /// Records whose indexed <paramref name="field"/> equals <paramref name="value"/>, in id order,
    /// starting after <paramref name="afterId"/> (stable paging). See <see cref="IndexedFields"/>.
    /// </summary>
    Task<IReadOnlyList<T>> FindAsync(string field, string value, int limit = 100, string? afterId = null,
        CancellationToken cancellationToken = default);

    /// <summary>All records in id order, a page at a time, starting after <paramref name="afterId"/>.</summary>
    Task<IReadOnlyList<T>> ListAsync(int limit = 100, string? afterId = null, CancellationToken cancellationToken = default);

    Task<long> CountAsync(CancellationToken cancellationToken = default);

    /// <summary>Fields that <see cref="FindAsync"/> accepts for this collection.</summary>
    IReadOnlyCollection<string> IndexedFields { get; }
}

/// <summary>Index names accepted by <see cref="IEntitySet{T}.FindAsync"/> on the core collections.</summary>
public static class IndexedField
{
    public const string Email = "email";
    public const string Phone = "phone";
    public const string Owner = "owner";
    public const string Tag = "tag";
    /// <summary>Value is <c>system:id</c>, for example <c>erp:C1002</c>.</summary>
    public const string ExternalId = "externalId";
    public const string Name = "name";
    public const string CustomerId = "customerId";
    public const string Sku = "sku";
}
