using System.Collections.Concurrent;
using Cronos;
using CrmEngine.Abstractions.Scheduling;

namespace CrmEngine.Scheduling.Jobs;

/// <summary>Validates schedules and computes occurrences (Cronos for cron, a fixed grid for intervals).</summary>
internal static class ScheduleMath
{
    private static readonly ConcurrentDictionary<string, CronExpression> CronCache = new(StringComparer.Ordinal);

    /// <summary>Throws <see cref="InvalidScheduleException"/> naming the field of a bad schedule.</summary>
    public static void Validate(JobSchedule schedule)
    {
        ArgumentNullException.ThrowIfNull(schedule);
        switch (schedule.Type)
        {
            case JobScheduleType.Once:
                if (schedule.At is null && schedule.After is null)
                {
                    throw new InvalidScheduleException("Schedule.At", "a one-shot job needs an instant (At) or a delay (After).");
                }

                if (schedule.At is null && schedule.After < TimeSpan.Zero)
                {
                    throw new InvalidScheduleException("Schedule.After", $"the delay {schedule.After} is negative.");
                }

                break;
            case JobScheduleType.Cron:
                ParseCron(schedule.Cron);
                ZoneOf(schedule);
                break;
            case JobScheduleType.Interval:
                if (schedule.Interval is not { } interval || interval < TimeSpan.FromSeconds(1))
                {
                    throw new InvalidScheduleException("Schedule.Interval", $"the interval must be at least one second (got {schedule.Interval?.ToString() ?? "none"}).");
                }

                break;
            default:
                throw new InvalidScheduleException("Schedule.Type", $"'{schedule.Type}' is not a schedule type.");
        }
    }

    public static CronExpression ParseCron(string? expression)
    {
        if (string.IsNullOrWhiteSpace(expression))
        {
            throw new InvalidScheduleException("Schedule.Cron", "the cron expression is empty.");
        }

        var text = expression.Trim();
        return CronCache.GetOrAdd(text, static t =>
        {
            var fields = t.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length;
            try
            {
                return CronExpression.Parse(t, fields == 6 ? CronFormat.IncludeSeconds : CronFormat.Standard);
            }
            catch (CronFormatException ex)
            {
                throw new InvalidScheduleException("Schedule.Cron",
                    $"'{t}' is not a valid cron expression ({ex.Message}). Use 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first.", ex);
            }
        });
    }

    public static TimeZoneInfo ZoneOf(JobSchedule schedule)
    {
        if (string.IsNullOrWhiteSpace(schedule.TimeZone))
        {
            return TimeZoneInfo.Utc;
        }

        try
        {
            return TimeZoneInfo.FindSystemTimeZoneById(schedule.TimeZone.Trim());
        }
        catch (Exception ex) when (ex is TimeZoneNotFoundException or InvalidTimeZoneException)
        {
            throw new InvalidScheduleException("Schedule.TimeZone", $"'{schedule.TimeZone}' is not a known time zone id (use an IANA id such as 'Europe/Berlin').", ex);
        }
    }

    /// <summary>
    /// Resolves a schedule against <paramref name="now"/>: the stored form (a delay becomes an instant, an
    /// interval gets its grid anchor) and the first occurrence (null when a cron expression never fires).
    /// </summary>
    public static (JobSchedule Resolved, DateTimeOffset? First) Resolve(JobSchedule schedule, DateTimeOffset now)
    {
        Validate(schedule);
        switch (schedule.Type)
        {
            case JobScheduleType.Once:
                var at = schedule.At ?? now + schedule.After!.Value;
                return (schedule with { At = at, After = schedule.After }, at);
            case JobScheduleType.Interval:
                var anchor = schedule.At ?? now + schedule.Interval!.Value;
                return (schedule with { At = anchor }, anchor);
            default:
                return (schedule, ParseCron(schedule.Cron).GetNextOccurrence(now, ZoneOf(schedule), inclusive: true));
        }
    }

    /// <summary>The first occurrence strictly after <paramref name="after"/>; null for a one-shot job.</summary>
    public static DateTimeOffset? NextAfter(JobSchedule schedule, DateTimeOffset after)
    {
        switch (schedule.Type)
        {
            case JobScheduleType.Cron:
                return ParseCron(schedule.Cron).GetNextOccurrence(after, ZoneOf(schedule), inclusive: false);
            case JobScheduleType.Interval:
                var anchor = schedule.At!.Value;
                var interval = schedule.Interval!.Value;
                if (after < anchor)
                {
                    return anchor;
                }

                var steps = (after - anchor).Ticks / interval.Ticks + 1;
                return anchor + TimeSpan.FromTicks(steps * interval.Ticks);
            default:
                return null;
        }
    }

    /// <summary>The next occurrence at or after <paramref name="now"/> (a one-shot job: its instant).</summary>
    public static DateTimeOffset? NextFrom(JobSchedule schedule, DateTimeOffset now) => schedule.Type switch
    {
        JobScheduleType.Once => schedule.At,
        JobScheduleType.Cron => ParseCron(schedule.Cron).GetNextOccurrence(now, ZoneOf(schedule), inclusive: true),
        _ => NextAfter(schedule, now.AddTicks(-1)),
    };

    public static bool IsRecurring(JobSchedule schedule) => schedule.Type != JobScheduleType.Once;

    /// <summary>Delay before attempt <paramref name="failedAttempts"/> + 1: RetryDelay doubled per failure, capped.</summary>
    public static TimeSpan Backoff(JobKindOptions options, int failedAttempts)
    {
        var factor = Math.Pow(2, Math.Min(Math.Max(failedAttempts - 1, 0), 30));
        var ticks = Math.Min(options.RetryDelay.Ticks * factor, options.MaxRetryDelay.Ticks);
        return TimeSpan.FromTicks((long)ticks);
    }
}
