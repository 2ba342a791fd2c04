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
        // Plugin entity declarations are looked up lazily (at snapshot time): the plugin host may itself need the model.
        services.TryAddSingleton(sp => new SecurityDirectory(sp.GetRequiredService<IStoreProvider>(), () => sp.GetServices<IEntityDeclarationSource>()));
        services.TryAddSingleton(sp => new SecurityAdministration(sp.GetRequiredService<SecurityDirectory>()));
        services.TryAddSingleton(sp => new OwnershipTransfer(sp.GetRequiredService<IStoreProvider>(), sp.GetRequiredService<SecurityAdministration>()));
        return services;
    }

    /// <summary>
    /// Also enforces record and field privileges in the write pipeline for writes made as a user id or an API key
    /// (<see cref="WriteEnforcement"/>, hosted). The host enables it; engine writers (plugins, rules, imports, scheduler)
    /// are filtered out on the writer thread from the actor alone, so they pay nothing.
    /// </summary>
    public static IServiceCollection AddCrmSecurityWriteEnforcement(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddCrmSecurity();
        services.TryAddSingleton(sp => new WriteEnforcement(sp.GetRequiredService<CrmEngine.Core.Pipeline.IWriteHandlerRegistry>(), sp.GetRequiredService<SecurityDirectory>(),
            sp.GetRequiredService<IStoreProvider>()));
        services.AddHostedService(sp => sp.GetRequiredService<WriteEnforcement>());
        return services;
    }
}
