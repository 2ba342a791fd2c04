using System.Globalization;
using CrmEngine.Abstractions.Scheduling;
using CrmEngine.Scheduling.Jobs;

namespace CrmEngine.Scheduling.Admin;

/// <summary>An answer of <see cref="SchedulingControl"/>: an HTTP-like status and either a body or an error message.</summary>
public sealed record ControlAnswer(int Status, object? Body, string? Error)
{
    public static ControlAnswer Ok(object body) => new(200, body, null);
    public static ControlAnswer Fail(int status, string error) => new(status, null, error);
}

/// <summary>A job with its most recent runs (newest first), as <c>crm jobs show</c> prints it.</summary>
public sealed record JobDetails(JobInfo Job, IReadOnlyList<JobRunInfo> Runs);

/// <summary>The open periods of a calendar, as <c>crm calendars show</c> prints them.</summary>
public sealed record CalendarPeriods(string Name, string TimeZone, DateTimeOffset From, DateTimeOffset To, IReadOnlyList<BusinessPeriod> Periods);

/// <summary>
/// What <c>crm jobs ...</c> and <c>crm calendars show</c> ask for, independent of the transport: the host
/// maps these onto its control channel (and may call them directly when the service is stopped).
/// Bad input gives 400 with a message naming the option, unknown ids or names 404, a change the job's
/// state does not allow 409.
/// </summary>
public sealed class SchedulingControl(JobAdministration? jobs, IBusinessCalendars calendars, TimeProvider time)
{
    /// <summary>A control for calendars only (the job methods throw), for <c>crm calendars show</c> without a database.</summary>
    public static SchedulingControl ForCalendars(IBusinessCalendars calendars, TimeProvider time) => new(null, calendars, time);

    private JobAdministration Admin => jobs ?? throw new InvalidOperationException("This control has no job store (it was made for calendars only).");

    public const int MaxCalendarDays = 366;

    public async Task<ControlAnswer> ListJobsAsync(string? state, string? owner, string? kind, int? limit, CancellationToken cancellationToken = default)
    {
        JobState? parsed = null;
        if (!string.IsNullOrWhiteSpace(state))
        {
            if (string.Equals(state, "due", StringComparison.OrdinalIgnoreCase))
            {
                return ControlAnswer.Ok(await Admin.ListAsync(new JobQuery { DueOnly = true, Owner = owner, Kind = kind, Limit = limit ?? 100 }, cancellationToken).ConfigureAwait(false));
            }

            if (!Enum.TryParse<JobState>(state, ignoreCase: true, out var s) || int.TryParse(state, out _))
            {
                return ControlAnswer.Fail(400, $"--state: '{state}' is not a job state; use one of due, {string.Join(", ", Enum.GetNames<JobState>().Select(n => n.ToLowerInvariant()))}.");
            }

            parsed = s;
        }

        if (limit is < 1 or > 10_000)
        {
            return ControlAnswer.Fail(400, $"--limit: {limit} is out of range 1-10000.");
        }

        var jobs = await Admin.ListAsync(new JobQuery { State = parsed, Owner = owner, Kind = kind, Limit = limit ?? 100 }, cancellationToken).ConfigureAwait(false);
        return ControlAnswer.Ok(jobs);
    }

    public async Task<ControlAnswer> ShowJobAsync(string id, int runs = 20, CancellationToken cancellationToken = default)
    {
        try
        {
            var (job, list) = await Admin.ShowAsync(id, runs, cancellationToken).ConfigureAwait(false);
            return ControlAnswer.Ok(new JobDetails(job, list));
        }
        catch (KeyNotFoundException ex)
        {
            return ControlAnswer.Fail(404, ex.Message);
        }
    }

    /// <summary><paramref name="action"/>: run, pause, resume, cancel or retry. Answers the job as it is afterwards.</summary>
    public async Task<ControlAnswer> ActAsync(string id, string action, CancellationToken cancellationToken = default)
    {
        Func<string, CancellationToken, Task>? act = action?.ToLowerInvariant() switch
        {
            "run" => Admin.RunNowAsync,
            "pause" => Admin.PauseAsync,
            "resume" => Admin.ResumeAsync,
            "cancel" => Admin.CancelAsync,
            "retry" => Admin.RetryAsync,
            _ => null,
        };
        if (act is null)
        {
            return ControlAnswer.Fail(400, $"'{action}' is not a job action; use run, pause, resume, cancel or retry.");
        }

        try
        {
            await act(id, cancellationToken).ConfigureAwait(false);
            return await ShowJobAsync(id, 5, cancellationToken).ConfigureAwait(false);
        }
        catch (KeyNotFoundException ex)
        {
            return ControlAnswer.Fail(404, ex.Message);
        }
        catch (InvalidOperationException ex)
        {
            return ControlAnswer.Fail(409, ex.Message);
        }
    }

    /// <summary>Open periods of calendar <paramref name="name"/> from <paramref name="from"/> (yyyy-MM-dd, calendar-local; default today) for <paramref name="days"/> days (default 14).</summary>
    public ControlAnswer ShowCalendar(string name, string? from, int? days)
    {
        if (!calendars.TryGet(name, out var calendar))
        {
            return ControlAnswer.Fail(404, $"No calendar is named '{name}'. Known calendars: {string.Join(", ", calendars.Names)}.");
        }

        var count = days ?? 14;
        if (count is < 1 or > MaxCalendarDays)
        {
            return ControlAnswer.Fail(400, $"--days: {count} is out of range 1-{MaxCalendarDays}.");
        }

        DateOnly start;
        if (string.IsNullOrWhiteSpace(from))
        {
            start = DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(time.GetUtcNow(), calendar.TimeZone).DateTime);
        }
        else if (!DateOnly.TryParseExact(from, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out start))
        {
            return ControlAnswer.Fail(400, $"--from: '{from}' is not a date; write yyyy-MM-dd.");
        }

        var local = start.ToDateTime(TimeOnly.MinValue);
        var fromInstant = new DateTimeOffset(local, calendar.TimeZone.GetUtcOffset(local));
        var endLocal = start.AddDays(count).ToDateTime(TimeOnly.MinValue);
        var toInstant = new DateTimeOffset(endLocal, calendar.TimeZone.GetUtcOffset(endLocal));
        return ControlAnswer.Ok(new CalendarPeriods(calendar.Name, calendar.TimeZone.Id, fromInstant, toInstant, calendar.OpenPeriods(fromInstant, toInstant)));
    }

    public Task<SchedulerHealth> HealthAsync(CancellationToken cancellationToken = default) => Admin.HealthAsync(cancellationToken);
}
