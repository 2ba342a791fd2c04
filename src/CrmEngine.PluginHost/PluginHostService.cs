using Microsoft.Extensions.Hosting;

namespace CrmEngine.PluginHost;

/// <summary>Starts every plugin when the host starts (after the core store) and stops them on shutdown.</summary>
public sealed class PluginHostService(PluginManager manager) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => manager.StartAsync(cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => manager.StopAsync(cancellationToken);
}
