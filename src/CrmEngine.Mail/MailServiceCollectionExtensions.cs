using CrmEngine.Abstractions.Mail;
using CrmEngine.Api;
using CrmEngine.Core;
using CrmEngine.Core.Storage;
using CrmEngine.Mail.Outbox;
using CrmEngine.Mail.Sending;
using CrmEngine.Mail.Unsubscribe;
using CrmEngine.Templates;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CrmEngine.Mail;

public static class MailServiceCollectionExtensions
{
    /// <summary>Where the API listens when <c>Api:Urls</c> is not set (the API's own default).</summary>
    internal const string DefaultApiUrl = "http://127.0.0.1:5080";

    /// <summary>
    /// The mail outbox (after <c>AddCrmCore</c>; templates from <c>AddCrmTemplates</c> are used when registered):
    /// options <c>Mail</c> (validated at start), <see cref="IMailOutbox"/> (acting as <c>core</c>), the hosted sender,
    /// <see cref="MailAdministration"/>, the HTTP module (public <c>/unsubscribe</c>, <c>/api/mail/messages</c>), the
    /// <c>mail</c> health contributor, and the outbox in every plugin's own services (acting as <c>plugin:&lt;id&gt;</c>).
    /// </summary>
    public static IServiceCollection AddCrmMail(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddOptions<MailOptions>().Bind(configuration.GetSection(MailOptions.Section)).ValidateDataAnnotations().ValidateOnStart();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<MailSignal>();
        services.TryAddSingleton(sp => new OutboxStore(sp.GetRequiredService<CrmDatabase>(), sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton(sp => new UnsubscribeTokens(sp.GetRequiredService<OutboxStore>()));
        services.TryAddSingleton(sp => new UnsubscribeService(sp.GetRequiredService<UnsubscribeTokens>(), sp.GetRequiredService<IStoreProvider>(),
            sp.GetRequiredService<TimeProvider>(), () => sp.GetService<ICustomerRedirects>(), sp.GetService<ILogger<UnsubscribeService>>()));
        services.TryAddSingleton(sp => new MessageComposer(() => sp.GetService<IMailTemplates>(), Options(sp), sp.GetRequiredService<UnsubscribeTokens>(),
            UnsubscribeBase(Options(sp), configuration), sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton(sp => new MailOutbox(sp.GetRequiredService<OutboxStore>(), sp.GetRequiredService<IStoreProvider>(),
            () => sp.GetService<IMailTemplates>(), Options(sp), sp.GetRequiredService<MailSignal>(), () => sp.GetService<ICustomerRedirects>(),
            sp.GetService<ILogger<MailOutbox>>()));
        services.TryAddSingleton<IMailOutbox>(sp => sp.GetRequiredService<MailOutbox>());
        services.TryAddSingleton(sp => new MailAdministration(sp.GetRequiredService<OutboxStore>(), sp.GetRequiredService<MailSignal>(),
            Options(sp).UsesPickup ? "pickup" : "smtp"));
        services.AddSingleton<IApiEndpointModule>(sp => new MailEndpoints(sp.GetRequiredService<MailAdministration>(), sp.GetRequiredService<UnsubscribeService>()));
        services.AddSingleton<IHealthContributor>(sp => new MailHealthContributor(sp.GetRequiredService<MailAdministration>(), Options(sp)));
        services.AddSingleton<PluginHost.IPluginServiceContributor>(sp => new MailPluginServices(sp.GetRequiredService<MailOutbox>()));
        services.AddHostedService(sp =>
        {
            var options = Options(sp);
            var time = sp.GetRequiredService<TimeProvider>();
            var pickup = PickupFolder(options, configuration, sp.GetService<IHostEnvironment>()?.ContentRootPath);
            return new OutboxSender(sp.GetRequiredService<OutboxStore>(), sp.GetRequiredService<MessageComposer>(), options, sp.GetRequiredService<MailSignal>(),
                () => options.UsesPickup ? new PickupTransport(pickup) : new SmtpTransport(options, time), time, sp.GetService<ILogger<OutboxSender>>(),
                IsErasedCheck(sp.GetRequiredService<IStoreProvider>()));
        });
        return services;
    }

    /// <summary>Reads the customer card before a send: one lookup by id.</summary>
    private static Func<string, CancellationToken, Task<bool>> IsErasedCheck(IStoreProvider stores)
    {
        var store = stores.ForActor("mail");
        return async (customerId, ct) => await store.Customers.GetAsync(customerId, ct).ConfigureAwait(false) is { } c && MailOutbox.IsErased(c);
    }

    private static MailOptions Options(IServiceProvider sp) => sp.GetRequiredService<IOptions<MailOptions>>().Value;

    /// <summary><c>Mail:PickupDirectory</c> (relative to the content root), else <c>&lt;Store:DataDirectory&gt;/pickup</c>.</summary>
    public static string PickupFolder(MailOptions options, IConfiguration configuration, string? contentRoot)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(configuration);
        var root = contentRoot ?? Directory.GetCurrentDirectory();
        if (!string.IsNullOrWhiteSpace(options.PickupDirectory))
        {
            return Path.GetFullPath(options.PickupDirectory, root);
        }

        var store = new StoreOptions();
        configuration.GetSection(StoreOptions.Section).Bind(store);
        return Path.Combine(Path.GetFullPath(store.DataDirectory, root), "pickup");
    }

    /// <summary>
    /// <c>Mail:UnsubscribeBaseUrl</c>, else the API's first listen address (<c>Api:Urls</c>, a wildcard host shown as
    /// localhost), else the API's default. Set the option in production: customers must reach the link from outside.
    /// </summary>
    internal static string UnsubscribeBase(MailOptions options, IConfiguration configuration)
    {
        if (!string.IsNullOrWhiteSpace(options.UnsubscribeBaseUrl))
        {
            return options.UnsubscribeBaseUrl.Trim().TrimEnd('/');
        }

        var api = configuration.GetSection("Api");
        var urls = api["Urls"] ?? api.GetSection("Urls").GetChildren().Select(c => c.Value).FirstOrDefault(v => !string.IsNullOrWhiteSpace(v)) ?? api["Url"];
        var first = urls?.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault();
        if (first is null || !Uri.TryCreate(first.Replace("://*", "://localhost", StringComparison.Ordinal).Replace("://+", "://localhost", StringComparison.Ordinal),
                UriKind.Absolute, out var uri))
        {
            return DefaultApiUrl;
        }

        var host = uri.Host is "0.0.0.0" or "[::]" or "::" ? "localhost" : uri.Host;
        return $"{uri.Scheme}://{(host.Contains(':', StringComparison.Ordinal) && !host.StartsWith('[') ? "[" + host + "]" : host)}:{uri.Port}";
    }
}

/// <summary>Gives each plugin the outbox, recording <c>plugin:&lt;id&gt;</c> as the origin of what it enqueues.</summary>
internal sealed class MailPluginServices(MailOutbox outbox) : PluginHost.IPluginServiceContributor
{
    public void AddServices(IServiceCollection services, string pluginId) =>
        services.AddSingleton<IMailOutbox>(outbox.ForOrigin("plugin:" + pluginId));
}
