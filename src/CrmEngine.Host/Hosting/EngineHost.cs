using CrmEngine.Core;
using CrmEngine.DataExchange;
using CrmEngine.Host.Configuration;
using CrmEngine.Host.Control;
using CrmEngine.PluginHost;
using CrmEngine.Rules;
using CrmEngine.Scheduling;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using NLog.Extensions.Logging;

namespace CrmEngine.Host.Hosting;

/// <summary>Runs the engine: the generic host with the store, the plugins and the control channel.</summary>
internal static class EngineHost
{
    public static HostApplicationBuilder CreateBuilder(CrmConfiguration crm, NLog.LogFactory logFactory)
    {
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
        {
            ApplicationName = "CrmEngine",
            ContentRootPath = crm.ContentRoot,
            EnvironmentName = crm.EnvironmentName,
            Args = [],
        });

        // One stack of sources for the host and every command (see CrmConfiguration).
        builder.Configuration.Sources.Clear();
        CrmConfiguration.AddSources(builder.Configuration, crm.ContentRoot, crm.EnvironmentName, crm.Overrides);

        builder.Logging.ClearProviders();
        builder.Logging.SetMinimumLevel(LogLevel.Trace);
        builder.Logging.AddNLog(_ => logFactory);

        // Service lifetimes: each is a no-op unless started by systemd (Type=notify) / the Windows SCM.
        builder.Services.AddSystemd();
        // The name the service was registered under (crm service install --name writes Host:ServiceName into its command line).
        var serviceName = builder.Configuration.GetSection(CrmHostOptions.Section)[nameof(CrmHostOptions.ServiceName)];
        builder.Services.AddWindowsService(o => o.ServiceName = string.IsNullOrWhiteSpace(serviceName) ? "crm" : serviceName);

        builder.Services.AddOptions<CrmHostOptions>()
            .Bind(builder.Configuration.GetSection(CrmHostOptions.Section))
            .ValidateDataAnnotations()
            .ValidateOnStart();
        builder.Services.AddOptions<HostOptions>()
            .Configure<IOptions<CrmHostOptions>>((host, crmHost) => host.ShutdownTimeout = crmHost.Value.ShutdownTimeout);
        builder.Services.Configure<ConsoleLifetimeOptions>(o => o.SuppressStatusMessages = true);

        builder.Services.AddSingleton(new EngineState(crm.ContentRoot, crm.EnvironmentName));
        builder.Services.AddSingleton(TimeProvider.System);

        // Order matters: hosted services start in this order and stop in reverse.
        builder.Services.AddCrmCore(builder.Configuration);
        // Users, teams, roles, shares (read on demand, changed by crm users|teams|... and owners transfer), and the write
        // pipeline's record checks for writes made as a user (the API acts as the key's user).
        CrmEngine.Security.SecurityServiceCollectionExtensions.AddCrmSecurityWriteEnforcement(builder.Services);
        // Before the plugin host: the rules folder is loaded and the event rules are in the pipeline before any plugin
        // worker starts writing (a write made earlier would never see them).
        builder.Services.AddCrmEventRules(builder.Configuration);
        builder.Services.AddCrmPluginHost(builder.Configuration);
        // After the plugin host: plugins register their job kinds before the first look for due jobs,
        // and the scheduler stops (its runs cancelled) before the plugins stop.
        builder.Services.AddCrmScheduling(builder.Configuration);
        // After the scheduler: segments follow the change feed and schedule their time refresh (the event rules are already in).
        builder.Services.AddCrmRules(builder.Configuration);
        // After the rules: webhooks follow the change feed from their own stored cursor (independent of the order of other
        // feed readers); registered before the API is mapped so it finds the /api/webhooks module and the health part.
        CrmEngine.Webhooks.WebhooksServiceCollectionExtensions.AddCrmWebhooks(builder.Services, builder.Configuration);
        // After the rules: the API starts once plugins (their endpoints), scheduler and rules are up and stops before them; modules and health contributors registered later are read at its start.
        CrmEngine.Api.ApiServiceCollectionExtensions.AddCrmApi(builder.Services, builder.Configuration);
        // After the rules: the duplicate checks join the pipeline once core and rules are in (handlers of one stage run by order, then registration), and the API finds the data-exchange module and redirects.
        builder.Services.AddCrmDataExchange(builder.Configuration);
        // After the rules: the templates folder is read at start (refused files logged) and watched; renders read files lazily, so the order only decides when refusals are logged.
        CrmEngine.Templates.TemplatesServiceCollectionExtensions.AddCrmTemplates(builder.Services, builder.Configuration);
        // After the templates (and the API): the outbox renders through the templates and adds its endpoints and health to the API; its sender stops first.
        CrmEngine.Mail.MailServiceCollectionExtensions.AddCrmMail(builder.Services, builder.Configuration);
        // A customer erase also scrubs the mail already sent to the customer (DataExchange does not know Mail).
        builder.Services.AddSingleton<CrmEngine.DataExchange.Customers.ICustomerErasureStep>(sp => new Commands.MailErasureStep(sp.GetRequiredService<CrmEngine.Mail.MailAdministration>()));
        builder.Services.AddHostedService<ControlChannelService>();
        builder.Services.AddHostedService<ReadyAnnouncer>();
        return builder;
    }

    public static async Task<int> RunAsync(CrmConfiguration crm)
    {
        // Same checks as crm config check, except the plugins' own options (each plugin validates them when it
        // starts: a bad value refuses that plugin, the rest go on) and unknown sections (a warning here).
        var problems = ConfigChecker.Check(crm.Root, crm.ContentRoot, AppContext.BaseDirectory);
        var errors = problems.Where(p => ConfigChecker.IsError(p, atStart: true)).ToList();
        if (errors.Count > 0)
        {
            await Console.Error.WriteLineAsync(ConfigChecker.Format(errors, atStart: true));
            return ExitCodes.Usage;
        }

        if (problems.Count > 0)
        {
            await Console.Error.WriteLineAsync(ConfigChecker.Format(problems, atStart: true));
        }

        NLog.LogFactory logFactory;
        try
        {
            logFactory = CrmLogging.Create(crm.Root, crm.ContentRoot);
        }
        catch (Exception ex) when (ex is NLog.NLogConfigurationException or IOException or UnauthorizedAccessException)
        {
            await Console.Error.WriteLineAsync($"configuration error: NLog: {ex.Message}");
            return ExitCodes.Usage;
        }

        InstanceLock instanceLock;
        try
        {
            var dataDirectory = Commands.AdminCommands.StoreOptionsOf(crm).DataDirectory;
            instanceLock = InstanceLock.Acquire(dataDirectory);
        }
        catch (CommandRefusedException ex)
        {
            logFactory.Dispose();
            await Console.Error.WriteLineAsync(ex.Message);
            return ex.ExitCode;
        }

        using (instanceLock)
        using (logFactory)
        {
            var logger = logFactory.GetLogger("CrmEngine.Host");
            // Failures go to the log file in full; the console gets the one line written to stderr below.
            var failure = logFactory.GetLogger("CrmEngine.Failure");
            try
            {
                using var host = CreateBuilder(crm, logFactory).Build();
                await host.RunAsync();
                logger.Info("CrmEngine stopped");
                return ExitCodes.Ok;
            }
            catch (OptionsValidationException ex)
            {
                var message = $"configuration error: {ex.OptionsName}: {string.Join("; ", ex.Failures)}";
                failure.Error(message);
                await Console.Error.WriteLineAsync(message);
                return ExitCodes.Usage;
            }
            catch (CommandRefusedException ex)
            {
                failure.Error(ex.Message);
                await Console.Error.WriteLineAsync(ex.Message);
                return ex.ExitCode;
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                // Full detail goes to the log file; the console and the exit status get one line.
                failure.Fatal(ex, "CrmEngine failed");
                await Console.Error.WriteLineAsync($"CrmEngine failed: {Innermost(ex).Message}");
                return ExitCodes.Failed;
            }
            finally
            {
                logFactory.Flush(TimeSpan.FromSeconds(5));
            }
        }
    }

    private static Exception Innermost(Exception ex)
    {
        while (ex is AggregateException { InnerExceptions.Count: 1 } or TypeInitializationException && ex.InnerException is not null)
        {
            ex = ex.InnerException!;
        }

        return ex;
    }
}
