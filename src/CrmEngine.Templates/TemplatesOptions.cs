using System.ComponentModel.DataAnnotations;

namespace CrmEngine.Templates;

/// <summary>Section <c>Templates</c>: where the mail templates live and the limits of one render.</summary>
public sealed class TemplatesOptions
{
    public const string Section = "Templates";

    /// <summary>Folder of the templates; relative paths are taken from the content root.</summary>
    [Required(AllowEmptyStrings = false)]
    public string Directory { get; set; } = "templates";

    /// <summary>Iterations one loop statement may run (summed over its repeats).</summary>
    [Range(10, 10_000_000)]
    public int LoopLimit { get; set; } = 10_000;

    /// <summary>Depth of nested function calls (a template function calling itself).</summary>
    [Range(1, 200)]
    public int RecursiveLimit { get; set; } = 50;

    /// <summary>Characters one rendered part (subject, HTML or text body) may have.</summary>
    [Range(1024, 100_000_000)]
    public int MaxOutputChars { get; set; } = 2_000_000;

    /// <summary>Characters any one string built during a render may have.</summary>
    [Range(1024, 100_000_000)]
    public int MaxStringChars { get; set; } = 1_000_000;

    /// <summary>Wall-clock budget of one render (subject and both bodies together); generous so a cold first render on a busy machine fits.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:01:00")]
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Partials including partials: how deep.</summary>
    [Range(1, 64)]
    public int MaxIncludeDepth { get; set; } = 8;

    /// <summary>Wait after the last file event before changed templates are re-read.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:01:00")]
    public TimeSpan ReloadDebounce { get; set; } = TimeSpan.FromMilliseconds(300);

    /// <summary>
    /// How often a render also compares the files' versions (size, write time) with the cached ones, in case a file
    /// event was missed (network shares, editors that replace files). Zero checks on every render.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "01:00:00")]
    public TimeSpan VersionCheckInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Names of the extra values triggers may provide (<c>case</c>, <c>campaign</c> ...): <c>crm templates check</c>
    /// accepts these as top-level variables; their fields are not checked.
    /// </summary>
    public List<string> ExtraNames { get; set; } = ["case", "campaign", "reminder", "activity", "links"];
}
