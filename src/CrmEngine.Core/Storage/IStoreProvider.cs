using CrmEngine.Abstractions.Store;

namespace CrmEngine.Core.Storage;

/// <summary>Hands out store facades that act as a named actor.</summary>
public interface IStoreProvider
{
    /// <summary>
    /// A store acting as <paramref name="actor"/> (recorded in audit and change feed). When
    /// <paramref name="collectionOwner"/> is given, <see cref="ICrmStore.Collection{T}"/> names
    /// collections <c>{collectionOwner}_{name}</c>; otherwise plugin collections are refused.
    /// </summary>
    ICrmStore ForActor(string actor, string? collectionOwner = null);
}

/// <summary>Which plugin versions have been installed against this database (for install/migrate).</summary>
public interface IInstalledPlugins
{
    string? GetInstalledVersion(string pluginId);
    void SetInstalledVersion(string pluginId, string version);
}
