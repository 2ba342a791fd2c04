using CrmEngine.Abstractions;
using CrmEngine.Abstractions.Plugins;
using Microsoft.Extensions.Configuration;

namespace CrmEngine.PluginHost;

/// <summary>
/// Inspect-only evaluation for <c>crm plugins list</c> when the service is not running: reads every
/// manifest, checks configuration, SDK ranges, dependencies and the entry type (loaded in a collectible
/// context, never instantiated). Nothing is started and the store is not touched. In the result,
/// <see cref="PluginState.Active"/> means "would be started"; a plugin can still fail at start.
/// </summary>
public static class PluginInspector
{
    /// <summary>Inspects the folders configured in section <c>PluginHost</c> of <paramref name="configuration"/>.</summary>
    public static IReadOnlyList<PluginInfo> Inspect(IConfiguration configuration, string? baseDirectory = null)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var options = new PluginHostOptions();
        configuration.GetSection(PluginHostOptions.Section).Bind(options);
        return Inspect(options.ResolveDirectories(baseDirectory ?? AppContext.BaseDirectory), configuration);
    }

    /// <summary>Inspects the plugin folders under <paramref name="directories"/> (absolute paths).</summary>
    public static IReadOnlyList<PluginInfo> Inspect(IEnumerable<string> directories, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var candidates = PluginResolver.Discover(directories);
        var resolved = PluginResolver.Resolve(candidates, configuration, SemVersion.Parse(CrmSdk.Version),
            c => PluginAssemblyLoader.CheckEntry(c.Folder, c.Manifest!.EntryAssembly));
        return resolved.Select(c => c.ToInfo(c.State ?? PluginState.Active, c.Reason)).ToList();
    }
}
