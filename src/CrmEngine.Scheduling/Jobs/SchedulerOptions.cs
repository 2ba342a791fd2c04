using System.ComponentModel.DataAnnotations;

namespace CrmEngine.Scheduling.Jobs;

/// <summary>Section <c>Scheduler</c>.</summary>
public sealed class SchedulerOptions
{
    public const string Section = "Scheduler";

    /// <summary>
    /// This host's name in leases. Must be stable across restarts (a restarted node takes back its own
    /// runs at once) and different for every host sharing one database. Default: the machine name.
    /// </summary>
    public string? NodeId { get; set; }

    /// <summary>Longest sleep between looks for due jobs (a newly scheduled earlier job wakes the loop at once). Default 1 s.</summary>
    [Range(typeof(TimeSpan), "00:00:00.050", "00:10:00", ParseLimitsInInvariantCulture = true, ConvertValueInInvariantCulture = true)]
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Runs in parallel on this host. Default 4.</summary>
    [Range(1, 256)]
    public int MaxConcurrentRuns { get; set; } = 4;

    /// <summary>An occurrence found due later than this after its time is a misfire (the engine was down). Default 1 minute.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00", ParseLimitsInInvariantCulture = true, ConvertValueInInvariantCulture = true)]
    public TimeSpan MisfireThreshold { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>A lease lasts the job's timeout plus this grace; after that another node (or this one) runs it again. Default 30 s.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00", ParseLimitsInInvariantCulture = true, ConvertValueInInvariantCulture = true)]
    public TimeSpan LeaseGrace { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long a job whose kind has no handler (plugin not active) waits before it is looked at again. Default 1 minute.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00", ParseLimitsInInvariantCulture = true, ConvertValueInInvariantCulture = true)]
    public TimeSpan NoHandlerDelay { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Runs kept per job (oldest removed first). Default 50.</summary>
    [Range(1, 10_000)]
    public int RunHistoryPerJob { get; set; } = 50;

    /// <summary>Completed and cancelled jobs are removed this long after they ended. Default 7 days.</summary>
    [Range(typeof(TimeSpan), "00:01:00", "3650.00:00:00", ParseLimitsInInvariantCulture = true, ConvertValueInInvariantCulture = true)]
    public TimeSpan EndedJobRetention { get; set; } = TimeSpan.FromDays(7);
}
