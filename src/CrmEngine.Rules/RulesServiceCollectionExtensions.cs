using CrmEngine.Abstractions.Rules;
using CrmEngine.Abstractions.Scheduling;
using CrmEngine.Core.Pipeline;
using CrmEngine.Core.Storage;
using CrmEngine.Rules.Events;
using CrmEngine.Rules.Scripting;
using CrmEngine.Rules.Segments;
using CrmEngine.Rules.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CrmEngine.Rules;

public static class RulesServiceCollectionExtensions
{
    /// <summary>
    /// The rule engine (after <c>AddCrmCore</c>): options <c>Rules</c> (validated at start),
    /// <see cref="IRuleEngine"/> / <see cref="JsRuleEngine"/>, the <see cref="RuleCatalog"/> of the
    /// rules folder (loaded and watched at start), <see cref="EventRules"/> registered into the
    /// pipeline, the <see cref="SegmentService"/> (hosted: change feed, rebuilds) and the
    /// <see cref="RuleTester"/> for dry runs.
    /// </summary>
    public static IServiceCollection AddCrmRules(this IServiceCollection services, IConfiguration configuration)
    {
        AddRuleServices(services, configuration);
        AddRulesStartupOnce(services);
        services.AddHostedService(sp => sp.GetRequiredService<SegmentService>());
        return services;
    }

    /// <summary>
    /// Loads the rules folder and registers the event rules as a hosted service that starts at this point of the
    /// registration order, for a host that must have them in the pipeline before something registered later starts
    /// writing (the engine calls it before the plugin host: plugin workers write as soon as they start, and a write
    /// made before the event rules are registered would never see them). <see cref="AddCrmRules"/> called afterwards
    /// adds the segments and does not register the event rules a second time.
    /// </summary>
    public static IServiceCollection AddCrmEventRules(this IServiceCollection services, IConfiguration configuration)
    {
        AddRuleServices(services, configuration);
        AddRulesStartupOnce(services);
        return services;
    }

    private static void AddRulesStartupOnce(IServiceCollection services)
    {
        if (services.Any(d => d.ServiceType == typeof(RulesStartupRegistered)))
        {
            return;
        }

        services.AddSingleton<RulesStartupRegistered>();
        services.AddHostedService(sp => new RulesStartup(sp.GetRequiredService<RuleCatalog>(), sp.GetRequiredService<EventRules>(),
            sp.GetRequiredService<IOptions<RulesOptions>>().Value));
    }

    private static void AddRuleServices(IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        if (services.Any(d => d.ServiceType == typeof(RuleCatalog)))
        {
            return;
        }

        services.AddOptions<RulesOptions>().Bind(configuration.GetSection(RulesOptions.Section)).ValidateDataAnnotations().ValidateOnStart();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(sp => new JsRuleEngine(sp.GetRequiredService<IOptions<RulesOptions>>(), sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton<IRuleEngine>(sp => sp.GetRequiredService<JsRuleEngine>());
        services.TryAddSingleton(sp =>
        {
            var options = sp.GetRequiredService<IOptions<RulesOptions>>().Value;
            var root = sp.GetService<IHostEnvironment>()?.ContentRootPath ?? AppContext.BaseDirectory;
            return new RuleCatalog(sp.GetRequiredService<JsRuleEngine>(), Path.Combine(root, options.Directory), sp.GetService<ILogger<RuleCatalog>>());
        });
        services.TryAddSingleton(sp => new EventRules(sp.GetRequiredService<JsRuleEngine>(), sp.GetRequiredService<RuleCatalog>(),
            sp.GetRequiredService<IWriteHandlerRegistry>(), sp.GetRequiredService<IStoreProvider>(), sp.GetRequiredService<TimeProvider>(),
            sp.GetService<ILogger<EventRules>>(), () => sp.GetService<CrmEngine.Abstractions.Mail.IMailOutbox>()));
        services.TryAddSingleton(sp => new SegmentService(sp.GetRequiredService<JsRuleEngine>(), sp.GetRequiredService<RuleCatalog>(),
            sp.GetRequiredService<IStoreProvider>(), sp.GetRequiredService<IOptions<RulesOptions>>(), sp.GetRequiredService<TimeProvider>(),
            sp.GetService<ILogger<SegmentService>>(), sp.GetService<IScheduler>()));
        // A full rebuild can take minutes on a big database; runs of the job never overlap.
        services.AddJobHandler<SegmentTimeRefreshJob>(SegmentService.TimeRefreshJobKind, o => o.Timeout = TimeSpan.FromHours(2));
        services.TryAddSingleton(sp => new RuleTester(sp.GetRequiredService<JsRuleEngine>(), sp.GetRequiredService<RuleCatalog>(),
            sp.GetRequiredService<IStoreProvider>(), sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton(sp => new Admin.RulesAdministration(sp.GetRequiredService<RuleTester>(), sp.GetRequiredService<SegmentService>()));
    }

    /// <summary>Marks that the event rules' startup is registered (hosted services start in registration order).</summary>
    private sealed class RulesStartupRegistered;
}

/// <summary>Loads the rules folder, starts watching it and registers the event rules.</summary>
internal sealed class RulesStartup(RuleCatalog catalog, EventRules events, RulesOptions options) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        catalog.Reload();
        catalog.Watch(options.ReloadDebounce);
        events.Start();
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        events.Dispose();
        catalog.Dispose();
        return Task.CompletedTask;
    }
}
