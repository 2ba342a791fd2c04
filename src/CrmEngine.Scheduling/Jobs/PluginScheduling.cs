using CrmEngine.Abstractions.Scheduling;
using Microsoft.Extensions.DependencyInjection;

namespace CrmEngine.Scheduling.Jobs;

/// <summary>The two calls the plugin host makes so that plugins can schedule jobs and handle job kinds.</summary>
public static class PluginScheduling
{
    /// <summary>
    /// Before the plugin's provider is built: adds <see cref="IScheduler"/> (acting as <paramref name="pluginId"/>)
    /// and <see cref="IBusinessCalendars"/> to the plugin's own services.
    /// </summary>
    public static IServiceCollection AddPluginScheduling(this IServiceCollection pluginServices, JobScheduler scheduler,
        IBusinessCalendars calendars, string pluginId)
    {
        ArgumentNullException.ThrowIfNull(pluginServices);
        ArgumentNullException.ThrowIfNull(scheduler);
        ArgumentNullException.ThrowIfNull(calendars);
        pluginServices.AddSingleton(scheduler.ForOwner(pluginId));
        pluginServices.AddSingleton(calendars);
        return pluginServices;
    }

    /// <summary>
    /// When the plugin becomes Active: registers the job kinds it declared (<c>builder.AddJobHandler&lt;T&gt;(kind)</c>)
    /// under its id. Dispose the result when it stops or is marked Malfunctioned; its jobs then wait.
    /// </summary>
    /// <exception cref="InvalidOperationException">A kind is already registered by another owner.</exception>
    public static IDisposable RegisterPluginJobKinds(this JobScheduler scheduler, string pluginId, IServiceProvider pluginServices, Func<bool> acceptsCalls)
    {
        ArgumentNullException.ThrowIfNull(scheduler);
        return scheduler.Registry.RegisterDeclared(pluginId, pluginServices, acceptsCalls);
    }
}
