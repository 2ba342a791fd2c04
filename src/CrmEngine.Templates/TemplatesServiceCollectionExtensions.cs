using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CrmEngine.Templates;

public static class TemplatesServiceCollectionExtensions
{
    /// <summary>
    /// The mail templates: options <c>Templates</c> (validated at start), <see cref="MailTemplates"/> as the singleton
    /// <see cref="IMailTemplates"/> over the templates folder (relative to the content root), and a hosted service that
    /// reads every template at start (logging the refused ones) and then watches the folder.
    /// </summary>
    public static IServiceCollection AddCrmTemplates(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        if (services.Any(d => d.ServiceType == typeof(MailTemplates)))
        {
            // Registered already (one folder, one watcher, one start-up read).
            return services;
        }

        services.AddOptions<TemplatesOptions>().Bind(configuration.GetSection(TemplatesOptions.Section)).ValidateDataAnnotations().ValidateOnStart();
        services.TryAddSingleton(sp =>
        {
            var options = sp.GetRequiredService<IOptions<TemplatesOptions>>().Value;
            var root = sp.GetService<IHostEnvironment>()?.ContentRootPath ?? AppContext.BaseDirectory;
            return new MailTemplates(Path.Combine(root, options.Directory), options, sp.GetService<ILogger<MailTemplates>>());
        });
        services.TryAddSingleton<IMailTemplates>(sp => sp.GetRequiredService<MailTemplates>());
        services.AddHostedService(sp => new TemplatesStartup(sp.GetRequiredService<MailTemplates>(), sp.GetService<ILogger<MailTemplates>>()));
        return services;
    }
}

/// <summary>Reads the templates folder at start and watches it while the engine runs.</summary>
internal sealed class TemplatesStartup(MailTemplates templates, ILogger? logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        var refused = templates.LoadAll();
        logger?.LogInformation("Mail templates: {Count} in {Directory}, {Refused} file(s) refused", templates.Names().Count, templates.Directory, refused.Count);
        templates.Watch();
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        templates.Dispose();
        return Task.CompletedTask;
    }
}
