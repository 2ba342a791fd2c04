namespace CrmEngine.Abstractions.Scheduling;

/// <summary>
/// A named business calendar: a time zone, working hours per weekday (several spans a day) and
/// closures (holidays). All arithmetic takes and returns instants; the calendar converts to its
/// local time, so daylight-saving changes are handled: an hour skipped in spring is never working
/// time, a repeated hour in autumn counts twice when it lies inside working hours.
/// </summary>
public interface IBusinessCalendar
{
    /// <summary>The configured name (case-insensitive), for example <c>default</c>.</summary>
    string Name { get; }

    /// <summary>The time zone the working hours and holidays are expressed in.</summary>
    TimeZoneInfo TimeZone { get; }

    /// <summary>True when <paramref name="instant"/> falls inside working hours (start inclusive, end exclusive).</summary>
    bool IsOpen(DateTimeOffset instant);

    /// <summary>
    /// The instant at which <paramref name="businessTime"/> of working time has passed after
    /// <paramref name="start"/>. Zero returns <paramref name="start"/>; when the end falls exactly
    /// at a closing time, that closing time is returned (not the next opening).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">A negative duration.</exception>
    /// <exception cref="InvalidOperationException">The calendar has no working time in the next years.</exception>
    DateTimeOffset AddBusinessTime(DateTimeOffset start, TimeSpan businessTime);

    /// <summary>Working time between two instants; negative when <paramref name="to"/> is before <paramref name="from"/>.</summary>
    TimeSpan BusinessTimeBetween(DateTimeOffset from, DateTimeOffset to);

    /// <summary>The first instant at or after <paramref name="instant"/> that is open; null when none within the search horizon.</summary>
    DateTimeOffset? NextOpening(DateTimeOffset instant);

    /// <summary>The open periods overlapping [<paramref name="from"/>, <paramref name="to"/>), clipped to it, in order.</summary>
    IReadOnlyList<BusinessPeriod> OpenPeriods(DateTimeOffset from, DateTimeOffset to);
}

/// <summary>One open period [Start, End) of a business calendar.</summary>
public readonly record struct BusinessPeriod(DateTimeOffset Start, DateTimeOffset End)
{
    public TimeSpan Duration => End - Start;
}

/// <summary>The calendars configured in section <c>Calendars</c>; <see cref="Default"/> always exists.</summary>
public interface IBusinessCalendars
{
    /// <summary>The calendar named <c>default</c> (configured, or the shipped Monday-Friday 09:00-17:00 UTC one).</summary>
    IBusinessCalendar Default { get; }

    /// <summary>Names of every calendar, <c>default</c> included.</summary>
    IReadOnlyCollection<string> Names { get; }

    /// <summary>The calendar named <paramref name="name"/> (case-insensitive).</summary>
    /// <exception cref="KeyNotFoundException">No calendar has that name; the message lists the known names.</exception>
    IBusinessCalendar Get(string name);

    bool TryGet(string name, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out IBusinessCalendar? calendar);
}

public static class BusinessCalendarExtensions
{
    /// <summary>Adds <paramref name="minutes"/> business minutes to <paramref name="start"/>.</summary>
    public static DateTimeOffset AddBusinessMinutes(this IBusinessCalendar calendar, DateTimeOffset start, int minutes)
    {
        ArgumentNullException.ThrowIfNull(calendar);
        return calendar.AddBusinessTime(start, TimeSpan.FromMinutes(minutes));
    }
}

/// <summary>
/// A pausable clock that counts business time, for example an SLA clock that stops while a case
/// is waiting on the customer. Immutable and plain data (store it on your record): every
/// operation returns a new clock. The calendar is passed in, so the clock stays serialisable.
/// </summary>
public sealed record BusinessClock
{
    /// <summary>Business time counted in earlier running segments (before the last pause).</summary>
    public TimeSpan ElapsedBeforeRun { get; init; }

    /// <summary>When the current running segment started; null while paused.</summary>
    public DateTimeOffset? RunningSince { get; init; }

    public bool IsRunning => RunningSince is not null;

    /// <summary>A clock that starts running at <paramref name="at"/>.</summary>
    public static BusinessClock StartAt(DateTimeOffset at) => new() { RunningSince = at };

    /// <summary>Business time counted so far, as of <paramref name="now"/>.</summary>
    public TimeSpan Elapsed(IBusinessCalendar calendar, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(calendar);
        return RunningSince is { } since && now > since
            ? ElapsedBeforeRun + calendar.BusinessTimeBetween(since, now)
            : ElapsedBeforeRun;
    }

    /// <summary>Stops counting at <paramref name="now"/> (no change when already paused).</summary>
    public BusinessClock Pause(IBusinessCalendar calendar, DateTimeOffset now) =>
        RunningSince is null ? this : new BusinessClock { ElapsedBeforeRun = Elapsed(calendar, now), RunningSince = null };

    /// <summary>Counts again from <paramref name="now"/> (no change when already running).</summary>
    public BusinessClock Resume(DateTimeOffset now) => RunningSince is not null ? this : this with { RunningSince = now };

    /// <summary>
    /// The instant the clock reaches <paramref name="target"/> if it keeps running; null while paused.
    /// When the target is already reached before the current segment, the segment start is returned.
    /// </summary>
    public DateTimeOffset? DueAt(IBusinessCalendar calendar, TimeSpan target)
    {
        ArgumentNullException.ThrowIfNull(calendar);
        if (RunningSince is not { } since)
        {
            return null;
        }

        var left = target - ElapsedBeforeRun;
        return left <= TimeSpan.Zero ? since : calendar.AddBusinessTime(since, left);
    }
}
