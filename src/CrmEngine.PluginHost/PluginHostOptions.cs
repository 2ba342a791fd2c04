using System.ComponentModel.DataAnnotations;

namespace CrmEngine.PluginHost;

/// <summary>Section <c>PluginHost</c>.</summary>
public sealed class PluginHostOptions
{
    public const string Section = "PluginHost";

    /// <summary>
    /// Folders searched for plugin folders (each sub-folder is one plugin). Relative paths are taken
    /// from the application's base directory. Empty means <c>plugins</c>.
    /// </summary>
    public List<string> Directories { get; set; } = [];

    /// <summary>Budget of one install, migrate or start call (and of ConfigureServices).</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "01:00:00")]
    public TimeSpan StartTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Budget of one stop call, and of waiting for a plugin's workers to end.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "01:00:00")]
    public TimeSpan StopTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Budget of other host-to-plugin calls (creating the entry type, disposing its services).</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "01:00:00")]
    public TimeSpan CallTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Failures (handler throws or time-outs, worker crashes) within <see cref="FailureWindow"/> that mark a plugin Malfunctioned.</summary>
    [Range(1, 10_000)]
    public int FailureThreshold { get; set; } = 5;

    [Range(typeof(TimeSpan), "00:00:00.010", "1.00:00:00")]
    public TimeSpan FailureWindow { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>First delay before a crashed worker is restarted; doubles per crash up to <see cref="WorkerRestartMaxDelay"/>.</summary>
    [Range(typeof(TimeSpan), "00:00:00.001", "01:00:00")]
    public TimeSpan WorkerRestartDelay { get; set; } = TimeSpan.FromSeconds(1);

    [Range(typeof(TimeSpan), "00:00:00.001", "01:00:00")]
    public TimeSpan WorkerRestartMaxDelay { get; set; } = TimeSpan.FromMinutes(1);

    internal IReadOnlyList<string> ResolveDirectories(string baseDirectory) =>
        (Directories.Count == 0 ? ["plugins"] : Directories)
        .Where(d => !string.IsNullOrWhiteSpace(d))
        .Select(d => Path.GetFullPath(Path.IsPathRooted(d) ? d : Path.Combine(baseDirectory, d)))
        .Distinct(StringComparer.Ordinal)
        .ToList();
}
