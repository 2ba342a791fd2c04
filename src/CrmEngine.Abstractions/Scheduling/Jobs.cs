using System.Text.Json;
using CrmEngine.Abstractions.Plugins;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace CrmEngine.Abstractions.Scheduling;

/// <summary>How a job's schedule is expressed.</summary>
public enum JobScheduleType
{
    /// <summary>Once at an instant (<see cref="JobSchedule.At"/>) or after a delay (<see cref="JobSchedule.After"/>).</summary>
    Once,
    /// <summary>Recurring by a cron expression in a time zone (5 fields, or 6 with seconds first).</summary>
    Cron,
    /// <summary>Recurring every <see cref="JobSchedule.Interval"/>, on a fixed grid from the first occurrence.</summary>
    Interval,
}

/// <summary>When a job runs. Create with <see cref="Once"/>, <see cref="Delay"/>, <see cref="CronExpression"/> or <see cref="Every"/>.</summary>
public sealed record JobSchedule
{
    public JobScheduleType Type { get; init; }

    /// <summary>Once: the instant; Interval: the first occurrence (null = now + interval).</summary>
    public DateTimeOffset? At { get; init; }

    /// <summary>Once: a delay from the moment of scheduling (used when <see cref="At"/> is null).</summary>
    public TimeSpan? After { get; init; }

    /// <summary>Cron: the expression, for example <c>0 8 * * MON-FRI</c> or with seconds <c>*/30 * * * * *</c>.</summary>
    public string? Cron { get; init; }

    /// <summary>Cron: IANA (or Windows) time zone id the expression is read in; default UTC.</summary>
    public string? TimeZone { get; init; }

    /// <summary>Interval: the period (at least one second).</summary>
    public TimeSpan? Interval { get; init; }

    public static JobSchedule Once(DateTimeOffset at) => new() { Type = JobScheduleType.Once, At = at };

    public static JobSchedule Delay(TimeSpan delay) => new() { Type = JobScheduleType.Once, After = delay };

    public static JobSchedule CronExpression(string expression, string? timeZone = null) =>
        new() { Type = JobScheduleType.Cron, Cron = expression, TimeZone = timeZone };

    public static JobSchedule Every(TimeSpan interval, DateTimeOffset? firstAt = null) =>
        new() { Type = JobScheduleType.Interval, Interval = interval, At = firstAt };

    public override string ToString() => Type switch
    {
        JobScheduleType.Once when At is { } at => $"once at {at:O}",
        JobScheduleType.Once => $"once after {After}",
        JobScheduleType.Cron => $"cron '{Cron}' ({TimeZone ?? "UTC"})",
        _ => $"every {Interval}",
    };
}

/// <summary>What happens to an occurrence that fell due while the engine was down (later than the misfire threshold).</summary>
public enum MisfirePolicy
{
    /// <summary>Run once now; for a recurring job every missed occurrence collapses into this one run.</summary>
    RunOnce,
    /// <summary>Do not run the missed occurrence; a recurring job continues with its next occurrence after now, a one-shot job completes as skipped.</summary>
    Skip,
}

/// <summary>What <see cref="IScheduler.ScheduleAsync"/> does when a live job of the same owner already has the unique key.</summary>
public enum UniqueKeyPolicy
{
    /// <summary>The existing job is cancelled (a run in progress finishes first) and the new one is created.</summary>
    Replace,
    /// <summary>The existing job is kept unchanged and returned; the request is ignored.</summary>
    KeepExisting,
}

/// <summary>A job to schedule.</summary>
public sealed record JobRequest
{
    /// <summary>The job kind; a handler for it must be registered (by the core or a plugin) before it falls due.</summary>
    public required string Kind { get; init; }

    public required JobSchedule Schedule { get; init; }

    /// <summary>Opaque payload handed to the handler (JSON by convention, see <see cref="JobRequestExtensions.WithPayload{T}"/>).</summary>
    public string? Payload { get; init; }

    /// <summary>Optional key, unique among the live jobs of the same owner (for example <c>sla:case-42</c>).</summary>
    public string? UniqueKey { get; init; }

    public UniqueKeyPolicy UniqueKeyPolicy { get; init; } = UniqueKeyPolicy.Replace;

    public MisfirePolicy Misfire { get; init; } = MisfirePolicy.RunOnce;

    /// <summary>Overrides the kind's <see cref="JobKindOptions.MaxAttempts"/>.</summary>
    public int? MaxAttempts { get; init; }

    /// <summary>Overrides the kind's <see cref="JobKindOptions.Timeout"/>.</summary>
    public TimeSpan? Timeout { get; init; }
}

public static class JobRequestExtensions
{
    /// <summary>The request with <paramref name="payload"/> serialised as JSON (web defaults).</summary>
    public static JobRequest WithPayload<T>(this JobRequest request, T payload)
    {
        ArgumentNullException.ThrowIfNull(request);
        return request with { Payload = JsonSerializer.Serialize(payload, JobExecutionContext.JsonOptions) };
    }
}

/// <summary>Lifecycle state of a job.</summary>
public enum JobState
{
    /// <summary>Waiting for its due time.</summary>
    Scheduled,
    /// <summary>A run holds the lease.</summary>
    Running,
    /// <summary>Paused by a user or a plugin; does not run until resumed.</summary>
    Paused,
    /// <summary>Failed on every attempt; waits for <c>crm jobs retry</c>. The last error is kept.</summary>
    Parked,
    /// <summary>A one-shot job that ran (or was skipped by its misfire policy).</summary>
    Completed,
    Cancelled,
}

/// <summary>How one run ended.</summary>
public enum JobRunOutcome
{
    /// <summary>Started and not finished yet (or the process died: see <see cref="Abandoned"/>).</summary>
    Running,
    Succeeded,
    /// <summary>The handler threw.</summary>
    Failed,
    /// <summary>The handler did not finish within its timeout and was cancelled.</summary>
    TimedOut,
    /// <summary>The run's lease expired (the process was killed or hung); the occurrence was run again.</summary>
    Abandoned,
    /// <summary>The occurrence was not run because of the misfire policy <see cref="MisfirePolicy.Skip"/>.</summary>
    Skipped,
    /// <summary>No handler was registered for the kind (owning plugin not active); the job waits.</summary>
    NoHandler,
}

/// <summary>A job as stored.</summary>
public sealed record JobInfo
{
    public required string Id { get; init; }
    /// <summary>Who scheduled it: a plugin id or <c>core</c>.</summary>
    public required string Owner { get; init; }
    public required string Kind { get; init; }
    public required JobSchedule Schedule { get; init; }
    public required JobState State { get; init; }
    public string? Payload { get; init; }
    public string? UniqueKey { get; init; }
    public MisfirePolicy Misfire { get; init; }
    /// <summary>The next time it runs (Scheduled), or the lease expiry (Running); null otherwise.</summary>
    public DateTimeOffset? DueAt { get; init; }
    /// <summary>The occurrence the next or current run is for.</summary>
    public DateTimeOffset? Occurrence { get; init; }
    /// <summary>Failed attempts of the current occurrence.</summary>
    public int Attempt { get; init; }
    public int? MaxAttempts { get; init; }
    public TimeSpan? Timeout { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset UpdatedAt { get; init; }
    public DateTimeOffset? LastRunAt { get; init; }
    public JobRunOutcome? LastOutcome { get; init; }
    public string? LastError { get; init; }
    /// <summary>Node holding the lease while Running.</summary>
    public string? LeaseOwner { get; init; }
    public long RunCount { get; init; }
}

/// <summary>One recorded run of a job.</summary>
public sealed record JobRunInfo
{
    public required string Id { get; init; }
    public required string JobId { get; init; }
    public required string Kind { get; init; }
    public required string Owner { get; init; }
    public DateTimeOffset Occurrence { get; init; }
    /// <summary>1 for the first attempt of an occurrence.</summary>
    public int Attempt { get; init; }
    public required string IdempotencyKey { get; init; }
    public required string Node { get; init; }
    public DateTimeOffset StartedAt { get; init; }
    public DateTimeOffset? EndedAt { get; init; }
    public JobRunOutcome Outcome { get; init; }
    public string? Error { get; init; }
}

/// <summary>
/// Schedules durable jobs. The instance a plugin receives acts as that plugin: jobs are owned by it
/// and it can only see and change its own jobs. Changes take effect at once and survive restarts.
/// </summary>
public interface IScheduler
{
    /// <summary>Stores the job. With a unique key already used by a live job, see <see cref="JobRequest.UniqueKeyPolicy"/>.</summary>
    /// <exception cref="InvalidScheduleException">A bad schedule (cron expression, time zone, interval); the message names the field.</exception>
    Task<JobInfo> ScheduleAsync(JobRequest request, CancellationToken cancellationToken = default);

    /// <summary>Null when there is no such job (or it belongs to another owner).</summary>
    Task<JobInfo?> GetAsync(string jobId, CancellationToken cancellationToken = default);

    /// <summary>The live (not completed, not cancelled) job with this unique key, or null.</summary>
    Task<JobInfo?> FindByKeyAsync(string uniqueKey, CancellationToken cancellationToken = default);

    /// <summary>Cancels the job; a run in progress finishes first. False when unknown or already ended.</summary>
    Task<bool> CancelAsync(string jobId, CancellationToken cancellationToken = default);

    /// <summary>Gives the job a new schedule (attempts reset). False when unknown or ended.</summary>
    Task<bool> RescheduleAsync(string jobId, JobSchedule schedule, CancellationToken cancellationToken = default);

    /// <summary>Stops the job from running until resumed; a run in progress finishes first.</summary>
    Task<bool> PauseAsync(string jobId, CancellationToken cancellationToken = default);

    /// <summary>Resumes a paused job: a recurring job continues with its next occurrence after now.</summary>
    Task<bool> ResumeAsync(string jobId, CancellationToken cancellationToken = default);
}

/// <summary>A bad schedule; <see cref="Field"/> names the offending field (for example <c>Schedule.Cron</c>).</summary>
public sealed class InvalidScheduleException : ArgumentException
{
    public InvalidScheduleException() { Field = ""; }
    public InvalidScheduleException(string message) : base(message) { Field = ""; }
    public InvalidScheduleException(string message, Exception inner) : base(message, inner) { Field = ""; }
    public InvalidScheduleException(string field, string message, Exception? inner = null) : base($"{field}: {message}", inner) { Field = field; }

    public string Field { get; }
}

/// <summary>What a job handler receives for one run.</summary>
public sealed record JobExecutionContext
{
    internal static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web);

    public required string JobId { get; init; }
    public required string Kind { get; init; }
    public required string Owner { get; init; }
    public string? Payload { get; init; }
    public string? UniqueKey { get; init; }

    /// <summary>The scheduled instant of the occurrence this run is for.</summary>
    public DateTimeOffset Occurrence { get; init; }

    /// <summary>1 for the first attempt; higher when an earlier attempt failed, timed out or was lost in a crash.</summary>
    public int Attempt { get; init; }

    /// <summary>
    /// <c>{jobId}:{occurrence as unix ms}</c>: the same for every attempt of one occurrence. Execution is
    /// at-least-once: record this key with the effect (in the same write) and skip work already done under it.
    /// </summary>
    public required string IdempotencyKey { get; init; }

    /// <summary>The payload deserialised from JSON (web defaults); default when there is none.</summary>
    public T? GetPayload<T>() => string.IsNullOrEmpty(Payload) ? default : JsonSerializer.Deserialize<T>(Payload, JsonOptions);
}

/// <summary>Runs the jobs of one kind. Resolved in a new scope for every run.</summary>
public interface IJobHandler
{
    /// <summary>
    /// Does the work. Throwing schedules a retry with backoff, up to the kind's attempts, then parks the job.
    /// <paramref name="cancellationToken"/> is cancelled at the timeout or at shutdown.
    /// </summary>
    Task ExecuteAsync(JobExecutionContext context, CancellationToken cancellationToken);
}

/// <summary>Limits of one job kind.</summary>
public sealed class JobKindOptions
{
    /// <summary>A run still going after this is cancelled and counts as a failure. Default 5 minutes.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Attempts per occurrence before the job is parked. Default 5.</summary>
    public int MaxAttempts { get; set; } = 5;

    /// <summary>Delay before the second attempt; doubled for each further one. Default 10 seconds.</summary>
    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Upper bound of the retry delay. Default 15 minutes.</summary>
    public TimeSpan MaxRetryDelay { get; set; } = TimeSpan.FromMinutes(15);
}

/// <summary>A job kind declared in a service collection; the host registers it with the scheduler under the declaring owner.</summary>
public sealed record JobHandlerDeclaration(string Kind, Type HandlerType, JobKindOptions Options);

public static class JobHandlerRegistrationExtensions
{
    /// <summary>Declares that <typeparamref name="THandler"/> runs the jobs of <paramref name="kind"/> for this plugin.</summary>
    public static IPluginBuilder AddJobHandler<THandler>(this IPluginBuilder builder, string kind, Action<JobKindOptions>? configure = null)
        where THandler : class, IJobHandler
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddJobHandler<THandler>(kind, configure);
        return builder;
    }

    /// <summary>Declares that <typeparamref name="THandler"/> runs the jobs of <paramref name="kind"/> (core and host services).</summary>
    public static IServiceCollection AddJobHandler<THandler>(this IServiceCollection services, string kind, Action<JobKindOptions>? configure = null)
        where THandler : class, IJobHandler
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentException.ThrowIfNullOrWhiteSpace(kind);
        var options = new JobKindOptions();
        configure?.Invoke(options);
        if (options.Timeout <= TimeSpan.Zero || options.MaxAttempts < 1 || options.RetryDelay < TimeSpan.Zero || options.MaxRetryDelay < options.RetryDelay)
        {
            throw new ArgumentException($"Job kind '{kind}': Timeout must be positive, MaxAttempts at least 1 and MaxRetryDelay at least RetryDelay.", nameof(configure));
        }

        services.TryAddScoped<THandler>();
        services.AddSingleton(new JobHandlerDeclaration(kind, typeof(THandler), options));
        return services;
    }
}
