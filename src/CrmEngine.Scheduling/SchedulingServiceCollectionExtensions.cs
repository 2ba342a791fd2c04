using CrmEngine.Abstractions.Scheduling;
using CrmEngine.Core.Pipeline;
using CrmEngine.Core.Storage;
using CrmEngine.Scheduling.Admin;
using CrmEngine.Scheduling.Calendars;
using CrmEngine.Scheduling.Jobs;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CrmEngine.Scheduling;

public static class SchedulingServiceCollectionExtensions
{
    /// <summary>
    /// The scheduler and the business calendars: options <c>Scheduler</c> (validated at start), calendars
    /// from <c>Calendars</c> (<see cref="IBusinessCalendars"/>, built at first use; a bad calendar stops
    /// start-up with the key named), <see cref="JobHandlerRegistry"/>, <see cref="JobScheduler"/>,
    /// <see cref="JobAdministration"/>, <see cref="IScheduler"/> acting as <c>core</c> and the hosted
    /// <see cref="SchedulerService"/>. Call after <c>AddCrmCore</c> (needs <see cref="CrmDatabase"/>). Job failures
    /// are reported to every <see cref="IHandlerFaultObserver"/> (the plugin host's fault breaker) as handler
    /// <c>job:&lt;kind&gt;</c> of the kind's owner.
    /// </summary>
    public static IServiceCollection AddCrmScheduling(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddOptions<SchedulerOptions>().Bind(configuration.GetSection(SchedulerOptions.Section)).ValidateDataAnnotations().ValidateOnStart();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<IBusinessCalendars>(sp => new BusinessCalendars(CalendarFactory.Load(configuration,
            sp.GetService<IHostEnvironment>()?.ContentRootPath, sp.GetRequiredService<TimeProvider>().GetUtcNow().Year)));
        services.TryAddSingleton<JobHandlerRegistry>();
        services.TryAddSingleton(sp => new JobScheduler(
            sp.GetRequiredService<CrmDatabase>(),
            sp.GetRequiredService<JobHandlerRegistry>(),
            sp.GetRequiredService<IOptions<SchedulerOptions>>().Value,
            sp.GetRequiredService<TimeProvider>(),
            sp.GetService<ILogger<JobScheduler>>(),
            () => sp.GetServices<IHandlerFaultObserver>()));
        services.TryAddSingleton(sp => new JobAdministration(sp.GetRequiredService<JobScheduler>()));
        services.TryAddSingleton(sp => new SchedulingControl(sp.GetRequiredService<JobAdministration>(),
            sp.GetRequiredService<IBusinessCalendars>(), sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton<IScheduler>(sp => sp.GetRequiredService<JobScheduler>().ForOwner(JobScheduler.CoreOwner));
        services.AddHostedService(sp => new SchedulerService(sp.GetRequiredService<JobScheduler>(), sp,
            sp.GetRequiredService<ILogger<SchedulerService>>()));
        return services;
    }
}
