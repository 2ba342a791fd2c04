namespace CrmEngine.Abstractions.Model;

/// <summary>A record in the shared store. The engine owns Id, Version and the timestamps.</summary>
public interface IEntity
{
    /// <summary>Unique id; assigned by the engine on create when empty. Ids sort by creation time.</summary>
    string Id { get; set; }

    /// <summary>Optimistic-concurrency version: an update must carry the version it read.</summary>
    long Version { get; set; }

    DateTimeOffset CreatedAt { get; set; }

    DateTimeOffset UpdatedAt { get; set; }
}

/// <summary>Convenience base class for entities, including plugin-owned documents.</summary>
public abstract class Entity : IEntity
{
    public string Id { get; set; } = "";
    public long Version { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }
}

/// <summary>Names of the core entities as they appear in events, the change feed and the audit log.</summary>
public static class EntityNames
{
    public const string Customer = "customer";
    public const string Activity = "activity";
    public const string Order = "order";
    public const string Product = "product";
    public const string Consent = "consent";
}
