using CrmEngine.Abstractions.Scheduling;
using Ical.Net.DataTypes;

namespace CrmEngine.Scheduling.Calendars;

/// <summary>
/// Reads closures from an iCalendar file with Ical.Net: an all-day event closes whole local dates
/// (DTEND exclusive), a timed event closes its period. Recurrences (RRULE) are expanded from five
/// years before to fifteen years after the current year.
/// </summary>
internal static class IcsHolidayImport
{
    private const int MaxOccurrences = 50_000;

    public static void Import(string path, string key, TimeZoneInfo zone, int currentYear, List<DateOnly> dates, List<BusinessPeriod> intervals)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new CalendarConfigurationException(key, $"the holiday file '{path}' cannot be read: {ex.Message}", ex);
        }

        Ical.Net.Calendar? calendar;
        try
        {
            calendar = Ical.Net.Calendar.Load(text);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            throw new CalendarConfigurationException(key, $"'{path}' is not a valid iCalendar file: {ex.Message}", ex);
        }

        if (calendar is null)
        {
            throw new CalendarConfigurationException(key, $"'{path}' holds no VCALENDAR.");
        }

        var windowStart = new CalDateTime(currentYear - 5, 1, 1);
        var windowEnd = new CalDateTime(currentYear + 16, 1, 1);
        var count = 0;
        foreach (var ev in calendar.Events)
        {
            if (ev.DtStart is null)
            {
                throw new CalendarConfigurationException(key, $"'{path}': event '{ev.Summary ?? ev.Uid}' has no DTSTART.");
            }

            IEnumerable<Ical.Net.DataTypes.Occurrence> occurrences;
            try
            {
                occurrences = ev.GetOccurrences(windowStart).TakeWhile(o => o.Period.StartTime.LessThan(windowEnd)).ToList();
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                throw new CalendarConfigurationException(key, $"'{path}': event '{ev.Summary ?? ev.Uid}' cannot be expanded: {ex.Message}", ex);
            }

            foreach (var occurrence in occurrences)
            {
                if (++count > MaxOccurrences)
                {
                    throw new CalendarConfigurationException(key, $"'{path}' expands to more than {MaxOccurrences} closures; use fewer or shorter recurrences.");
                }

                var start = occurrence.Period.StartTime;
                var end = occurrence.Period.EffectiveEndTime;
                if (!start.HasTime)
                {
                    var first = start.Date;
                    var last = end is null ? first : end.Date.AddDays(-1);
                    for (var d = first; d <= (last < first ? first : last); d = d.AddDays(1))
                    {
                        dates.Add(d);
                    }
                }
                else
                {
                    var s = ToInstant(start, zone);
                    var e = end is null ? s : ToInstant(end, zone);
                    if (e > s)
                    {
                        intervals.Add(new BusinessPeriod(s, e));
                    }
                }
            }
        }
    }

    private static DateTimeOffset ToInstant(CalDateTime value, TimeZoneInfo zone)
    {
        if (value.IsFloating)
        {
            var local = DateTime.SpecifyKind(value.Value, DateTimeKind.Unspecified);
            return new BusinessCalendar("ics", zone, new Dictionary<DayOfWeek, IReadOnlyList<DaySpan>>(), [], [], []).ToInstant(local, latest: false);
        }

        return new DateTimeOffset(DateTime.SpecifyKind(value.AsUtc, DateTimeKind.Utc));
    }
}
