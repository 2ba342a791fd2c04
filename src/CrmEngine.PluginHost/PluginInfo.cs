using CrmEngine.Abstractions.Plugins;

namespace CrmEngine.PluginHost;

/// <summary>
/// What the host knows about one plugin folder. <see cref="Id"/> is the folder name when the
/// manifest could not be read. <see cref="Reason"/> is one line, set whenever the state is not Active.
/// </summary>
public sealed record PluginInfo(
    string Id,
    string Name,
    string? Version,
    string Folder,
    PluginState State,
    string? Reason)
{
    /// <summary>The one log line per plugin: <c>plugin id 1.2.0 Active</c> or <c>... NotSupported: reason</c>.</summary>
    public override string ToString() =>
        $"plugin {Id} {Version ?? "?"} {State}" + (Reason is null ? "" : ": " + Reason);
}
