using CrmEngine.Core.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace CrmEngine.Security;

public static class SecurityServiceCollectionExtensions
{
    /// <summary>
    /// The access model: <see cref="SecurityDirectory"/> (storage and snapshots), <see cref="SecurityAdministration"/>
    /// (changes, seeding, access contexts) and <see cref="OwnershipTransfer"/>. Needs <c>AddCrmCore</c> first.
    /// </summary>
    public static IServiceCollection AddCrmSecurity(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.TryAddSingleton(sp => new SecurityDirectory(sp.GetRequiredService<IStoreProvider>()));
        services.TryAddSingleton(sp => new SecurityAdministration(sp.GetRequiredService<SecurityDirectory>()));
        services.TryAddSingleton(sp => new OwnershipTransfer(sp.GetRequiredService<IStoreProvider>(), sp.GetRequiredService<SecurityAdministration>()));
        return services;
    }
}
