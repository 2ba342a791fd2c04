using CrmEngine.Api;
using CrmEngine.Core.Pipeline;
using CrmEngine.Core.Storage;
using CrmEngine.DataExchange.Api;
using CrmEngine.DataExchange.Csv;
using CrmEngine.DataExchange.Customers;
using CrmEngine.DataExchange.Duplicates;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace CrmEngine.DataExchange;

public static class DataExchangeServiceCollectionExtensions
{
    /// <summary>
    /// CSV import/export, duplicate checks (pipeline handlers owned by <c>dataexchange</c>, hosted), duplicate scan,
    /// merge with redirects (<see cref="ICustomerRedirects"/>), erase and per-customer export, and their API module.
    /// Needs <c>AddCrmCore</c> first. Options section <c>DataExchange</c>, validated at start.
    /// </summary>
    public static IServiceCollection AddCrmDataExchange(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddOptions<DataExchangeOptions>().Bind(configuration.GetSection(DataExchangeOptions.Section)).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton(sp => new DuplicateFinder(sp.GetRequiredService<WritePipeline>(), sp.GetRequiredService<IOptions<DataExchangeOptions>>().Value.Duplicates));
        services.AddSingleton(sp => new CustomerImporter(sp.GetRequiredService<IStoreProvider>(), sp.GetRequiredService<IOptions<DataExchangeOptions>>(),
            sp.GetRequiredService<DuplicateFinder>(), sp.GetService<TimeProvider>()));
        services.AddSingleton(sp => new CustomerExporter(sp.GetRequiredService<IStoreProvider>()));
        services.AddSingleton(sp => new DuplicateScanner(sp.GetRequiredService<CrmDatabase>(), sp.GetRequiredService<IOptions<DataExchangeOptions>>().Value.Duplicates));
        services.AddSingleton(sp => new CustomerMerger(sp.GetRequiredService<IStoreProvider>(), sp.GetService<TimeProvider>()));
        services.AddSingleton(sp => new CustomerEraser(sp.GetRequiredService<IStoreProvider>(), sp.GetRequiredService<CrmDatabase>(), sp.GetService<TimeProvider>(),
            sp.GetServices<ICustomerErasureStep>()));
        services.AddSingleton(sp => new CustomerDataExport(sp.GetRequiredService<IStoreProvider>(), sp.GetRequiredService<CrmDatabase>(), sp.GetService<TimeProvider>(),
            () => sp.GetService<CrmEngine.Rules.Segments.SegmentService>()));
        services.AddSingleton<ICustomerRedirects>(sp => new CustomerRedirects(sp.GetRequiredService<IStoreProvider>()));
        services.AddSingleton(sp => new DuplicateGuard(sp.GetRequiredService<IWriteHandlerRegistry>(), sp.GetRequiredService<DuplicateFinder>(), sp.GetRequiredService<IStoreProvider>(),
            sp.GetService<CrmEngine.Security.SecurityDirectory>()));
        services.AddHostedService(sp => sp.GetRequiredService<DuplicateGuard>());
        services.AddSingleton<DuplicateScans>();
        services.AddSingleton<IApiEndpointModule, DataExchangeEndpoints>();
        return services;
    }
}
