using CrmEngine.PluginHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace CrmEngine.Host.Hosting;

/// <summary>
/// Registered last: once every hosted service has started (store, plugins, control channel) it logs
/// the one "CrmEngine ready" line, with the start-up time measured from the process start.
/// Under systemd the host sends READY=1 at the same moment.
/// </summary>
internal sealed class ReadyAnnouncer(
    IHostApplicationLifetime lifetime,
    EngineState state,
    IServiceProvider services,
    TimeProvider time,
    ILogger<ReadyAnnouncer> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        lifetime.ApplicationStarted.Register(() =>
        {
            var now = time.GetUtcNow();
            state.MarkReady(now);
            var plugins = services.GetService<PluginManager>()?.Plugins ?? [];
            var active = plugins.Count(p => p.State == Abstractions.Plugins.PluginState.Active);
            var elapsed = (now - state.StartedAt).TotalMilliseconds;
            logger.LogInformation("CrmEngine ready in {StartupMs:0} ms ({Active} of {Plugins} plugins active, content root {ContentRoot}, environment {Environment})",
                elapsed, active, plugins.Count, state.ContentRoot, state.EnvironmentName);
        });
        lifetime.ApplicationStopping.Register(() =>
        {
            state.Status = "stopping";
            logger.LogInformation("CrmEngine stopping");
        });
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
