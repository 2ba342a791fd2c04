using System.ComponentModel.DataAnnotations;

namespace CrmEngine.Rules;

/// <summary>Section <c>Rules</c>: where scripts live and the default budget of one run.</summary>
public sealed class RulesOptions
{
    public const string Section = "Rules";

    /// <summary>Folder of the scripts (<c>segments/</c>, <c>events/</c>); relative paths are taken from the content root.</summary>
    [Required(AllowEmptyStrings = false)]
    public string Directory { get; set; } = "rules";

    /// <summary>Threads that run scripts (each owns its engines); 0 means one per processor.</summary>
    [Range(0, 64)]
    public int Workers { get; set; }

    /// <summary>Wall-clock budget of one run.</summary>
    [Range(typeof(TimeSpan), "00:00:00.001", "00:01:00")]
    public TimeSpan Timeout { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Statements one run may execute.</summary>
    [Range(100, 1_000_000_000)]
    public long MaxStatements { get; set; } = 100_000;

    /// <summary>Bytes one run may allocate.</summary>
    [Range(1024, 4L * 1024 * 1024 * 1024)]
    public long MaxMemoryBytes { get; set; } = 16L * 1024 * 1024;

    /// <summary>Depth of nested JavaScript calls.</summary>
    [Range(1, 1000)]
    public int MaxRecursion { get; set; } = 64;

    /// <summary>Largest script accepted, in characters.</summary>
    [Range(100, 10_000_000)]
    public int MaxScriptLength { get; set; } = 256 * 1024;

    /// <summary>Largest JavaScript array a script may build.</summary>
    [Range(100, 100_000_000)]
    public int MaxArrayLength { get; set; } = 1_000_000;

    /// <summary><c>log(...)</c> lines kept per run; later lines are dropped (and counted).</summary>
    [Range(0, 10_000)]
    public int MaxLogLines { get; set; } = 100;

    /// <summary>Runs in a row that may fail before a segment is marked failed.</summary>
    [Range(1, 1_000_000)]
    public int SegmentFailureThreshold { get; set; } = 25;

    /// <summary>Wait after the last file event before a changed script is reloaded.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:01:00")]
    public TimeSpan ReloadDebounce { get; set; } = TimeSpan.FromMilliseconds(300);

    /// <summary>How often the segment service polls the change feed when it is idle.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:10:00")]
    public TimeSpan ChangePollInterval { get; set; } = TimeSpan.FromMilliseconds(250);

    /// <summary>
    /// Segments whose result depends on the time of evaluation ("no order in 180 days") are rebuilt this often, so a
    /// customer who does not change still moves in or out as time passes; zero turns it off. Runs as a recurring job of
    /// the engine's scheduler (<c>rules.segments-time-refresh</c>) when it is there, else on the segment service's own clock.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "7.00:00:00")]
    public TimeSpan TimeRefresh { get; set; } = TimeSpan.FromHours(1);
}
