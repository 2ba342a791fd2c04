using CrmEngine.Abstractions.Store;
using CrmEngine.Api;
using CrmEngine.Core.Storage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CrmEngine.Webhooks;

public static class WebhooksServiceCollectionExtensions
{
    /// <summary>
    /// Outbound webhooks (after <c>AddCrmCore</c>): options <c>Webhooks</c> (validated at start), the subscription and
    /// delivery store, the dispatcher (hosted: follows the change feed, sends, retries), the <c>/api/webhooks</c>
    /// endpoint module and the <c>webhooks</c> health contributor.
    /// </summary>
    public static IServiceCollection AddCrmWebhooks(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddOptions<WebhookOptions>().Bind(configuration.GetSection(WebhookOptions.Section)).ValidateDataAnnotations()
            .Validate(o => o.RetryMaxDelay >= o.RetryBaseDelay, "Webhooks:RetryMaxDelay must not be shorter than Webhooks:RetryBaseDelay.")
            .ValidateOnStart();
        services.AddSingleton<Microsoft.Extensions.Options.IValidateOptions<WebhookOptions>, AllowedHostsStartCheck>();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(sp => new WebhookStore(sp.GetRequiredService<CrmDatabase>(), sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton(sp => new WebhookDispatcher(sp.GetRequiredService<WebhookStore>(), sp.GetRequiredService<IChangeFeed>(),
            sp.GetRequiredService<CrmDatabase>(), sp.GetRequiredService<IOptions<WebhookOptions>>(), sp.GetRequiredService<TimeProvider>(),
            sp.GetService<ILogger<WebhookDispatcher>>(), sp.GetService<CrmEngine.Security.SecurityDirectory>()));
        services.AddHostedService(sp => sp.GetRequiredService<WebhookDispatcher>());
        services.AddSingleton<IApiEndpointModule>(sp => new WebhookEndpoints(sp.GetRequiredService<WebhookStore>(),
            sp.GetRequiredService<WebhookDispatcher>(), sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<IOptions<WebhookOptions>>().Value));
        services.TryAddSingleton(sp => new WebhookAdministration(sp.GetRequiredService<WebhookStore>(),
            sp.GetRequiredService<IOptions<WebhookOptions>>().Value, sp.GetRequiredService<WebhookDispatcher>().Wake, null,
            sp.GetService<CrmEngine.Security.SecurityDirectory>()));
        services.AddSingleton<IHealthContributor>(sp => new WebhookHealth(sp.GetRequiredService<WebhookStore>(),
            sp.GetRequiredService<WebhookDispatcher>(), sp.GetRequiredService<CrmDatabase>()));
        return services;
    }
}
