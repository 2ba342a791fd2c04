using Microsoft.Extensions.DependencyInjection;

namespace CrmEngine.PluginHost;

/// <summary>
/// An engine concern that puts its own service into every plugin's service provider (for example the mail outbox as
/// <c>IMailOutbox</c>). Register implementations in the engine's services; each is asked once per plugin, before the
/// plugin's own <c>ConfigureServices</c>, so a plugin sees the service but may still replace it for itself.
/// </summary>
public interface IPluginServiceContributor
{
    void AddServices(IServiceCollection services, string pluginId);
}
